"""Checkpoints that survive being killed at any moment.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place (the local
file backend opens the final name and writes into it) and then rewrites
the ``last_checkpoint`` pointer in place too; with ``max_keep_ckpts`` it
deletes the oldest checkpoint *before* writing the new one. A job killed
while saving (pre-emption, time limit, OOM killer) can therefore leave a
truncated ``iter_N.pth`` and a pointer naming it, and ``--resume`` dies.

:class:`AtomicCheckpointHook` is a drop-in ``CheckpointHook`` that

* writes each checkpoint to a hidden temporary file in the same directory,
  ``fsync``\\ s it and ``os.replace``\\ s it onto the final name (through the
  ``local_atomic`` file backend registered here), so ``iter_N.pth`` is
  either absent or complete;
* rewrites ``last_checkpoint`` the same way, only after the checkpoint is
  complete;
* deletes checkpoints beyond ``max_keep_ckpts`` only after the new one is
  safely written;
* on ``--resume``, checks the checkpoint the pointer names and, if it is
  missing or corrupt, warns naming it and resumes from the newest intact
  checkpoint instead.
"""

import glob
import os
import os.path as osp
import re
import secrets
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

__all__ = [
    'AtomicCheckpointHook',
    'AtomicLocalBackend',
    'atomic_write_bytes',
    'checkpoint_problem',
]

_TMP_SUFFIX = '.tmp'


def _temp_name(path: str) -> str:
    """Hidden sibling of ``path`` unique to this process and call."""
    directory, name = osp.split(path)
    token = f'{os.getpid()}.{secrets.token_hex(4)}'
    return osp.join(directory, f'.{name}.{token}{_TMP_SUFFIX}')


def _write_and_sync(path: str, data: bytes) -> None:
    """Create ``path`` (which must not exist), write ``data``, fsync.

    Created with mode 0o666 minus the umask, like ``open(path, 'wb')``.

    Args:
        path (str): File to create.
        data (bytes): Its complete content.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: str) -> None:
    """Persist a rename in ``directory`` (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` so that readers see old or new, never half.

    The bytes go to a hidden temporary file in the same directory, which
    is fsynced and then renamed onto ``path`` with ``os.replace`` (atomic
    on POSIX and Windows within one file system). If writing fails the
    temporary file is removed and ``path`` is untouched. A process killed
    mid-write leaves only a ``.<name>.<pid>.<token>.tmp`` file, which
    :class:`AtomicCheckpointHook` removes when training starts again.

    Args:
        data (bytes): The complete new content.
        path (str | Path): Destination; its directory is created if needed.
    """
    path = osp.abspath(os.fspath(path))
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = _temp_name(path)
    try:
        _write_and_sync(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


@register_backend('local_atomic', force=True)
class AtomicLocalBackend(LocalBackend):
    """Local file backend whose ``put``/``put_text`` are atomic.

    Selected with ``backend_args=dict(backend='local_atomic')``; reading is
    unchanged. See :func:`atomic_write_bytes`.
    """

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Atomically write bytes to ``filepath``.

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Path to write data.
        """
        atomic_write_bytes(obj, filepath)

    def put_text(
        self, obj: str, filepath: str | Path, encoding: str = 'utf-8'
    ) -> None:
        """Atomically write text to ``filepath``.

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Path to write text.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        atomic_write_bytes(obj.encode(encoding), filepath)


def checkpoint_problem(path: str | Path) -> str | None:
    """Say why ``path`` is not a complete checkpoint, or None if it is.

    ``torch.save`` writes a zip archive whose index sits at the end, so a
    truncated file is not a readable zip; every member carries a CRC, so
    ``testzip`` (which reads the whole file) also catches flipped bytes.
    Files in torch's legacy (non-zip) format are checked by loading them.

    Args:
        path (str | Path): Local checkpoint file.

    Returns:
        str | None: A short reason (e.g. 'file is truncated or not a
        checkpoint (...)'), or None when the file looks intact.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        return 'file does not exist'
    if osp.getsize(path) == 0:
        return 'file is empty'
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            return f'unreadable zip archive ({e})'
        return None if bad is None else f'CRC mismatch in member {bad!r}'
    try:
        torch.load(path, map_location='cpu')
    except Exception as e:  # any failure means the file is unusable
        return f'file is truncated or not a checkpoint ({type(e).__name__})'
    return None


def _template_regex(filename_tmpl: str) -> re.Pattern:
    """Regex matching names made by ``filename_tmpl.format(step)``."""
    head, _, tail = filename_tmpl.partition('{}')
    return re.compile(f'^{re.escape(head)}\\d+{re.escape(tail)}$')


def _candidates(directory: str, templates: Iterable[str]) -> list[str]:
    """Checkpoints in ``directory`` named by ``templates``, newest first."""
    patterns = [_template_regex(t) for t in templates]
    found = [
        path
        for path in glob.glob(osp.join(glob.escape(directory), '*.pth'))
        if any(p.match(osp.basename(path)) for p in patterns)
    ]
    return sorted(found, key=osp.getmtime, reverse=True)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints survive a kill at any moment.

    Takes every argument of mmengine's ``CheckpointHook`` (interval,
    by_epoch, max_keep_ckpts, save_best, ...). For a local ``out_dir``:
    checkpoints and the ``last_checkpoint`` pointer are written atomically
    (temp file + fsync + ``os.replace``), the pointer is only updated once
    the checkpoint is complete, and old checkpoints are deleted only after
    the new one is written. For remote back ends (``backend_args`` or
    ``file_client_args`` naming one) it behaves exactly like
    ``CheckpointHook``.

    Args:
        *args: Positional arguments of ``CheckpointHook``.
        check_on_resume (bool): With ``--resume`` (and no explicit
            ``load_from``), check the checkpoint named by
            ``work_dir/last_checkpoint`` before the runner loads it; if it
            is missing or corrupt, log a warning naming it and resume from
            the newest intact checkpoint in the checkpoint directory.
            Defaults to True.
        **kwargs: Keyword arguments of ``CheckpointHook``.
    """

    def __init__(self, *args, check_on_resume: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_on_resume = check_on_resume
        self.atomic = False

    # -- where checkpoints go ------------------------------------------------
    def _checkpoint_dir(self, runner) -> str:
        """``out_dir`` as ``CheckpointHook.before_train`` will resolve it."""
        if self.out_dir is None or self.out_dir == runner.work_dir:
            return runner.work_dir
        basename = osp.basename(runner.work_dir.rstrip(osp.sep))
        return osp.join(self.out_dir, basename)

    def _can_be_atomic(self, runner) -> bool:
        backend = (self.backend_args or {}).get('backend', 'local')
        out_dir = str(self.out_dir or runner.work_dir)
        return (
            self.file_client_args is None
            and backend in ('local', 'local_atomic')
            and '://' not in out_dir
        )

    # -- resume ------------------------------------------------------------
    def before_run(self, runner) -> None:
        """Steer ``--resume`` away from a missing or corrupt checkpoint.

        Runs before the runner resumes. Only acts when resuming
        automatically (``resume=True``, ``load_from=None``) from a local
        directory; then, if ``last_checkpoint`` is absent or names an
        unusable file, it sets the runner's ``load_from`` to the newest
        intact checkpoint (so that every rank picks the same one).

        Args:
            runner (Runner): The runner.
        """
        if not (self.check_on_resume and self._can_be_atomic(runner)):
            return
        if not getattr(runner, '_resume', False):
            return
        if getattr(runner, '_load_from', None) is not None:
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        named = None
        if osp.isfile(pointer):
            with open(pointer) as f:
                named = f.read().strip() or None
            problem = (
                'the pointer file is empty'
                if named is None
                else checkpoint_problem(named)
            )
            if problem is None:
                return  # the normal case: the runner resumes from it
            runner.logger.warning(
                f'Cannot resume from {named or pointer}: {problem}. Looking '
                'for the newest intact checkpoint instead.'
            )
        templates = {self.filename_tmpl, 'iter_{}.pth'}
        for path in _candidates(self._checkpoint_dir(runner), templates):
            if named is not None and osp.abspath(path) == osp.abspath(named):
                continue
            reason = checkpoint_problem(path)
            if reason is None:
                runner.logger.warning(
                    f'Resuming from {path}, the newest intact checkpoint'
                    + (
                        ''
                        if osp.isfile(pointer)
                        else f' ({pointer} is missing)'
                    )
                    + '.'
                )
                runner._load_from = path
                return
            runner.logger.warning(f'Skipping {path}: {reason}.')
        if osp.isfile(pointer):
            raise FileNotFoundError(
                f'--resume: {pointer} names {named!r}, which is unusable, '
                'and no intact checkpoint was found in '
                f'{self._checkpoint_dir(runner)}. Delete {pointer} to start '
                'from scratch.'
            )

    # -- saving --------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Select the atomic local back end, then set up as usual.

        Args:
            runner (Runner): The runner.
        """
        self.atomic = self._can_be_atomic(runner)
        if self.atomic:
            self.backend_args = dict(
                self.backend_args or {}, backend='local_atomic'
            )
        super().before_train(runner)
        if self.atomic and is_main_process():
            self._remove_stale_temp_files(runner)

    def _remove_stale_temp_files(self, runner) -> None:
        """Delete temp files left by a process killed while saving."""
        for directory in {self.out_dir, runner.work_dir}:
            pattern = osp.join(glob.escape(directory), f'.*{_TMP_SUFFIX}')
            for path in glob.glob(pattern):
                name = osp.basename(path)
                if not re.match(r'^\..+\.\d+\.[0-9a-f]{8}\.tmp$', name):
                    continue
                runner.logger.info(
                    f'Removing {path}, left by a save that was interrupted.'
                )
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save ``filename_tmpl.format(step)``, then the pointer, then prune.

        Same bookkeeping as ``CheckpointHook`` (``keep_ckpt_ids`` and
        ``last_ckpt`` in the message hub, so resumed runs prune the same
        files) but in a crash-safe order.

        Args:
            runner (Runner): The runner.
            step (int): Epoch or iteration number for the file name.
            meta (dict): Checkpoint meta (epoch, iter).
        """
        if not self.atomic:
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        expired = None
        if self.max_keep_ckpts > 0 and not (
            self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step
        ):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info(
                'keep_ckpt_ids', list(self.keep_ckpt_ids)
            )

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(
            self.out_dir, ckpt_filename
        )
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        self.write_pointer(runner, self.last_ckpt)
        if expired is not None and expired != step:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(expired)
            )
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    @staticmethod
    def write_pointer(runner, ckpt_path: str) -> None:
        """Atomically point ``work_dir/last_checkpoint`` at ``ckpt_path``.

        Args:
            runner (Runner): The runner (for ``work_dir``).
            ckpt_path (str): The complete checkpoint to resume from.
        """
        atomic_write_bytes(
            str(ckpt_path).encode(),
            osp.join(runner.work_dir, 'last_checkpoint'),
        )
