"""``cuda_graphs`` config key -> mmengine's ``compile`` options."""

import logging

import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger

from litehrnet_seg.utils.compile_config import resolve_compile_config


@pytest.fixture
def log_records():
    """Records of mmengine's current logger during the test."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    'compile_cfg,expected',
    [
        (False, dict(mode='reduce-overhead')),
        (True, dict(mode='reduce-overhead')),
        (dict(dynamic=False), dict(dynamic=False, mode='reduce-overhead')),
        (dict(mode='reduce-overhead'), dict(mode='reduce-overhead')),
    ],
)
def test_cuda_graphs_become_reduce_overhead(compile_cfg, expected):
    cfg = Config(dict(compile=compile_cfg, cuda_graphs=True))
    assert resolve_compile_config(cfg, cuda_available=True) is cfg
    assert cfg.compile == expected


def test_without_cuda_graphs_compile_is_untouched():
    for compile_cfg in (False, True, dict(backend='eager')):
        cfg = Config(dict(compile=compile_cfg, cuda_graphs=False))
        resolve_compile_config(cfg, cuda_available=True)
        assert cfg.compile == compile_cfg
    cfg = Config(dict(compile=True))  # no cuda_graphs key at all
    resolve_compile_config(cfg, cuda_available=True)
    assert cfg.compile is True


def test_cpu_falls_back_with_a_logged_message(log_records):
    cfg = Config(dict(compile=False, cuda_graphs=True))
    resolve_compile_config(cfg, cuda_available=False)
    assert cfg.compile is False
    messages = [r.getMessage() for r in log_records]
    assert any(
        'cuda_graphs=True needs a CUDA device' in m for m in messages
    ), messages
    assert all(r.levelno == logging.WARNING for r in log_records)


def test_conflicting_compile_mode_is_refused():
    cfg = Config(dict(compile=dict(mode='max-autotune'), cuda_graphs=True))
    with pytest.raises(ValueError, match='max-autotune'):
        resolve_compile_config(cfg, cuda_available=True)


def test_cpu_configs_resolve_without_cuda_argument(log_records):
    # The default asks torch; on a CPU-only machine compile stays False.
    import torch

    cfg = Config(dict(compile=False, cuda_graphs=True))
    resolve_compile_config(cfg)
    if torch.cuda.is_available():
        assert cfg.compile == dict(mode='reduce-overhead')
    else:
        assert cfg.compile is False and log_records
