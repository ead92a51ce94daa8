"""Shared test setup."""

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
