"""Choose the checkpoint ``--resume`` continues from, before the Runner
is built: the one ``last_checkpoint`` names if intact, else the newest
intact one, saying why.
"""

import glob
import os.path as osp
import re
from collections.abc import Callable, Iterable

from mmengine.logging import print_log

from ..checkpoint import CheckpointError, read_checkpoint

__all__ = ['ResumeError', 'find_resume_checkpoint']

# Names CheckpointHook and the safe loops write.
CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_\d+\.pth$')


class ResumeError(RuntimeError):
    """``--resume`` cannot continue safely; the message says why."""


def warn(message: str) -> None:
    """Log a warning through mmengine's current logger."""
    print_log(message, logger='current', level='WARNING')


def inside(path: str, directories: Iterable[str]) -> bool:
    """Whether ``path`` lies in one of ``directories``."""
    path = osp.realpath(path)
    return any(
        osp.commonpath([path, osp.realpath(d)]) == osp.realpath(d)
        for d in directories
    )


def problem(path: str) -> str | None:
    """Why ``path`` is not a readable checkpoint, or None."""
    try:
        read_checkpoint(path)
    except CheckpointError as e:
        return str(e)
    return None


def find_resume_checkpoint(
    work_dir: str,
    checkpoint_dirs: Iterable[str] = (),
    log: Callable[[str], None] = warn,
) -> str | None:
    """The checkpoint to resume from, checked to be intact.

    ``work_dir/last_checkpoint`` is read first. A path in it outside
    ``work_dir`` and ``checkpoint_dirs`` (a copied work_dir still names the
    original folder) is replaced by the file of the same name in
    ``work_dir``, with a warning; if there is none, :class:`ResumeError`.
    If the named checkpoint is missing or unreadable, the newest intact
    ``iter_N.pth`` / ``epoch_N.pth`` (by modification time) in
    ``work_dir`` and ``checkpoint_dirs`` is used instead, with a warning.

    Args:
        work_dir (str): The run's work_dir.
        checkpoint_dirs (Iterable[str]): Other folders the checkpoint hook
            writes to (its ``out_dir``). Defaults to ().
        log (Callable[[str], None]): Receives the warnings. Defaults to
            mmengine's current logger.

    Returns:
        str | None: A checkpoint path, or None when ``work_dir`` holds
        neither ``last_checkpoint`` nor a checkpoint (training starts from
        scratch, as mmengine does).

    Raises:
        ResumeError: ``last_checkpoint`` names a file outside the work_dir
            that the work_dir lacks, or an unusable checkpoint with no
            intact one to fall back to.
    """
    work_dir = osp.abspath(work_dir)
    dirs = [work_dir, *(osp.abspath(d) for d in checkpoint_dirs)]
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is not None:
            named = osp.join(work_dir, named)  # a relative path: in work_dir
            if not inside(named, dirs):
                local = osp.join(work_dir, osp.basename(named))
                if not osp.isfile(local):
                    raise ResumeError(
                        f'--resume: {pointer} names {named}, outside the '
                        f'work_dir {work_dir} (a copied work_dir?), and '
                        f'{local} does not exist. Resume in the original '
                        'work_dir, or copy the checkpoint into this one.'
                    )
                log(
                    f'{pointer} names {named}, outside the work_dir {work_dir}'
                    f' (a copied work_dir?); resuming from {local} instead.'
                )
                named = local
        reason = 'the file is empty' if named is None else problem(named)
        if reason is None:
            return named
        log(
            f'Cannot resume from {named or pointer}: {reason}. Looking for '
            'the newest intact checkpoint instead.'
        )
    candidates = {
        osp.join(d, name)
        for d in dirs
        if osp.isdir(d)
        for name in map(osp.basename, glob.glob(osp.join(glob.escape(d), '*')))
        if CHECKPOINT_NAME.match(name)
    }
    candidates.discard(named)
    for path in sorted(candidates, key=osp.getmtime, reverse=True):
        reason = problem(path)
        if reason is None:
            log(f'Resuming from {path}, the newest intact checkpoint.')
            return path
        log(f'Skipping {path}: {reason}.')
    if osp.isfile(pointer):
        raise ResumeError(
            f'--resume: {pointer} names {named!r}, which is unusable, and no '
            f'intact checkpoint was found in {", ".join(dirs)}. Delete '
            f'{pointer} to start from scratch.'
        )
    return None
