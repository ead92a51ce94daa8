"""A local file backend whose writes are atomic.

mmengine's ``LocalBackend.put`` opens the final name and writes into it,
so a job killed while saving leaves a truncated ``iter_N.pth``. Selecting
this backend for the checkpoint hook
(``default_hooks.checkpoint.backend_args=dict(backend='local_atomic')``)
makes every checkpoint either absent or complete: the bytes go to a hidden
temporary file in the same directory, which is fsynced and renamed onto
the final name.
"""

import contextlib
import os
import os.path as osp
import re
import secrets
from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend

__all__ = [
    'AtomicLocalBackend',
    'CheckpointWriteError',
    'atomic_write_bytes',
    'remove_stale_temp_files',
]

# Temporary files are named '.<name>.<pid>.<8 hex>.tmp'.
TMP_SUFFIX = '.tmp'


class CheckpointWriteError(OSError):
    """A file could not be written; the previous version is untouched."""


def write_new_file(path: str, data: bytes) -> None:
    """Create ``path`` (which must not exist), write ``data``, fsync.

    Args:
        path (str): File to create (mode 0o666 minus the umask).
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


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` so that readers see old or new, never half.

    If writing fails (disk full, killed) the temporary file is removed (a
    SIGKILL leaves it; ``remove_stale_temp_files`` deletes it later) and
    ``path`` keeps its previous content.

    Args:
        data (bytes): The complete new content.
        path (str | Path): Destination; its directory is created if needed.

    Raises:
        CheckpointWriteError: Naming ``path`` and the cause.
    """
    path = osp.abspath(os.fspath(path))
    directory, name = osp.split(path)
    os.makedirs(directory, exist_ok=True)
    token = f'{os.getpid()}.{secrets.token_hex(4)}'
    tmp = osp.join(directory, f'.{name}.{token}{TMP_SUFFIX}')
    try:
        write_new_file(tmp, data)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise CheckpointWriteError(
                e.errno,
                f'could not write {path} ({e.strerror or e}); the previous '
                f'{name} and last_checkpoint are unchanged',
            ) from e
        raise
    with contextlib.suppress(OSError):  # persist the rename (POSIX only)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@register_backend('local_atomic', force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` and ``put_text`` are atomic.

    Reading is unchanged. See :func:`atomic_write_bytes`.
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
        """Atomically write text to ``filepath`` (see :meth:`put`)."""
        atomic_write_bytes(obj.encode(encoding), filepath)


def remove_stale_temp_files(directory: str) -> list[str]:
    """Delete the temporary files of saves that were killed (SIGKILL).

    Only names this backend makes (``.<name>.<pid>.<8 hex>.tmp``) are
    removed; call it on one process, before training starts.

    Args:
        directory (str): A checkpoint directory (missing is fine).

    Returns:
        list[str]: The files removed.
    """
    pattern = re.compile(r'^\..+\.\d+\.[0-9a-f]{8}' + re.escape(TMP_SUFFIX))
    removed = []
    if not osp.isdir(directory):
        return removed
    for name in sorted(os.listdir(directory)):
        if pattern.fullmatch(name):
            try:
                os.unlink(osp.join(directory, name))
            except FileNotFoundError:  # another process was quicker
                continue
            removed.append(osp.join(directory, name))
    return removed
