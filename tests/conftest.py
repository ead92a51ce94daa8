"""Shared test setup.

The suite runs on pytest-xdist workers, one per core (``-n auto`` in
pyproject.toml), each file on one worker (``--dist loadfile``: module-scoped
training fixtures run once). Every process, in-process tests and the tools
they start alike, uses one OpenMP thread: OpenMP threads spin while they
wait, so two workers with two threads each on two cores starve each other
(a 0.3 s training step took 5-35 s that way).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Before torch is imported; subprocesses inherit it.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'

import pytest  # noqa: E402
import torch  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


@pytest.fixture(autouse=True, scope='session')
def one_torch_thread():
    """One intra-op thread for in-process tests (see the module docstring);
    their tensors are tiny anyway."""
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
        env = dict(os.environ, PYTHONPATH=str(root))
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


@pytest.fixture(scope='session')
def cityscapes_sample(tmp_path_factory, run_tool) -> Path:
    """The bundled Cityscapes frames (``tests/data/cityscapes``), copied
    and converted to trainIds by the project's converter, as the quickstart
    does. Shared: tests only read it (one that edits files copies it)."""
    root = Path(__file__).resolve().parents[1]
    tmp = tmp_path_factory.mktemp('cityscapes')
    data_root = tmp / 'cityscapes_sample'
    shutil.copytree(root / 'tests/data/cityscapes', data_root)
    run_tool(
        str(root / 'tools/dataset_converters/cityscapes.py'),
        str(data_root),
        cwd=tmp,
    )
    return data_root
