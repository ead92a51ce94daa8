"""Shared test setup."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True, scope='session')
def one_torch_thread():
    """One intra-op thread for in-process tests: their tensors are tiny, and
    with the cores shared (other jobs, the CLI subprocesses of the end-to-end
    tests) OpenMP threads oversubscribe and a 0.05 s forward can take
    seconds. Subprocesses set their own OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Configs set default_scope='mmseg'; tests that build from the
    registries directly need it too (otherwise e.g. 'LoadAnnotations'
    resolves to mmcv's class, not mmseg's)."""
    init_default_scope('mmseg')


@pytest.fixture(scope='session')
def run_tool():
    """Run a repository script in a fresh Python process, as a user would.

    Returns a function ``run(script, *args, cwd) -> CompletedProcess`` that
    fails the test with the tail of the output when the script fails.
    """
    root = Path(__file__).resolve().parents[1]

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS='2')
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, (
            f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        )
        return proc

    return run
