"""The compatibility layer: mmcv-lite ops fallback and safe checkpoints.

``litehrnet_seg.compat`` provides a pure-PyTorch ``mmcv.ops`` when only
mmcv-lite is installed, and lets torch >= 2.6 load mmengine checkpoints
with ``weights_only=True`` (the default) without allowing arbitrary code.
"""

import io
import os
import pickle
import sys

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import load_checkpoint, save_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import litehrnet_seg  # noqa: F401  (installs the fallback, registers globals)
from litehrnet_seg import compat

requires_lite = pytest.mark.skipif(
    compat._has_compiled_mmcv_ops(),
    reason='full mmcv with compiled ops is installed: no fallback',
)


# --------------------------------------------------------------------------
# mmcv-lite: mmcv.ops fallback
# --------------------------------------------------------------------------


@requires_lite
def test_fallback_installed_and_mmseg_imports():
    import mmseg.models  # noqa: F401  (imports mmcv.ops at import time)
    from mmcv.ops import point_sample, sigmoid_focal_loss

    ops = sys.modules['mmcv.ops']
    assert isinstance(ops, compat._LiteOpsModule)
    assert mmcv.ops is ops
    assert sigmoid_focal_loss is compat.sigmoid_focal_loss
    assert callable(point_sample)
    # Not a package: `import mmcv.ops.<sub>` must fail cleanly and private
    # names (probed by import machinery, hasattr) must not be placeholders.
    assert not hasattr(ops, '__path__')
    assert not hasattr(ops, '_ext')


def _bilinear_reference(feat, points):
    """Bilinear sampling with zero padding, align_corners=False, in numpy.

    ``points`` (N, P, 2) hold (x, y) in [0, 1] relative to the width and
    height; returns (N, C, P).
    """
    feat = feat.double().numpy()
    points = points.double().numpy()
    n, c, h, w = feat.shape
    out = np.zeros((n, c, points.shape[1]))
    for b in range(n):
        for i, (px, py) in enumerate(points[b]):
            x = px * w - 0.5
            y = py * h - 0.5
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[b, :, i] += wy * wx * feat[b, :, yy, xx]
    return torch.from_numpy(out)


def test_point_sample_matches_bilinear_reference():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 5, 7, generator=g)  # H != W catches x/y swaps
    # include points on and beyond the border (zero padding)
    points = torch.rand(2, 40, 2, generator=g) * 1.2 - 0.1
    out = mmcv.ops.point_sample(feat, points, align_corners=False)
    assert out.shape == (2, 3, 40)
    torch.testing.assert_close(
        out.double(), _bilinear_reference(feat, points), atol=1e-5, rtol=1e-5
    )
    # grid form (N, Hg, Wg, 2) -> (N, C, Hg, Wg)
    grid = points.view(2, 5, 8, 2)
    out4 = mmcv.ops.point_sample(feat, grid)
    assert out4.shape == (2, 3, 5, 8)
    torch.testing.assert_close(out4.reshape(2, 3, 40), out)
    # and the documented definition: grid_sample on 2 * p - 1
    ref = F.grid_sample(feat, 2 * grid - 1, align_corners=False)
    torch.testing.assert_close(out4, ref)


def _focal_reference(logits, target, gamma, alpha, weight):
    """mmcv's sigmoid focal loss kernel, element by element (N, C)."""
    n, c = logits.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        t = int(target[i])
        for j in range(c):
            p = torch.sigmoid(logits[i, j].double())
            if t == j:
                v = -alpha * (1 - p) ** gamma * torch.log(p)
            else:
                v = -(1 - alpha) * p**gamma * torch.log(1 - p)
            # mmcv reads weight[t]; background (t == C) gets weight 1
            if weight is not None and t < c:
                v = v * weight[t]
            out[i, j] = v
    return out


def _focal_grad_reference(logits, target, gamma, alpha, weight):
    """mmcv's analytic backward kernel (d loss / d logits), (N, C)."""
    n, c = logits.shape
    p = torch.sigmoid(logits.double())
    pos = F.one_hot(target, c + 1)[:, :c].double()
    term_p = (1 - p) ** gamma * (1 - p - gamma * p * torch.log(p))
    term_n = p**gamma * (gamma * (1 - p) * torch.log(1 - p) - p)
    grad = -pos * alpha * term_p - (1 - pos) * (1 - alpha) * term_n
    if weight is not None:
        w = torch.ones(n, dtype=torch.float64)
        fg = target < c
        w[fg] = weight[target[fg]].double()
        grad = grad * w[:, None]
    return grad


FOCAL_N, FOCAL_C = 12, 5


@pytest.fixture
def focal_inputs():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(FOCAL_N, FOCAL_C, generator=g) * 2
    target = torch.randint(0, FOCAL_C + 1, (FOCAL_N,), generator=g)
    target[:3] = FOCAL_C  # background: negative for every class
    target[3] = 0
    target[4] = FOCAL_C - 1
    weight = torch.rand(FOCAL_C, generator=g) + 0.5
    return logits, target, weight


@pytest.mark.parametrize('use_weight', [False, True], ids=['noweight', 'w'])
@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_sigmoid_focal_loss_matches_mmcv_kernel(
    focal_inputs, reduction, use_weight
):
    logits, target, weight = focal_inputs
    weight = weight if use_weight else None
    gamma, alpha = 2.0, 0.25
    ref = _focal_reference(logits, target, gamma, alpha, weight)
    # mmcv's SigmoidFocalLossFunction: 'mean' is sum / N (not / (N * C))
    ref = {
        'none': ref,
        'sum': ref.sum(),
        'mean': ref.sum() / logits.size(0),
    }[reduction]
    out = compat.sigmoid_focal_loss(
        logits, target, gamma, alpha, weight, reduction
    )
    assert out.dtype == logits.dtype
    torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=1e-5)
    # the op installed as mmcv.ops.sigmoid_focal_loss is this function
    torch.testing.assert_close(
        mmcv.ops.sigmoid_focal_loss(
            logits, target, gamma, alpha, weight, reduction
        ),
        out,
    )


@pytest.mark.parametrize('use_weight', [False, True], ids=['noweight', 'w'])
def test_sigmoid_focal_loss_gradient(focal_inputs, use_weight):
    logits, target, weight = focal_inputs
    weight = weight if use_weight else None
    x = logits.clone().requires_grad_()
    compat.sigmoid_focal_loss(x, target, 1.5, 0.3, weight, 'sum').backward()
    assert x.grad is not None
    ref = _focal_grad_reference(logits, target, 1.5, 0.3, weight)
    torch.testing.assert_close(x.grad.double(), ref, atol=1e-6, rtol=1e-5)


def test_sigmoid_focal_loss_rejects_bad_reduction(focal_inputs):
    logits, target, _ = focal_inputs
    with pytest.raises(ValueError, match='reduction'):
        compat.sigmoid_focal_loss(logits, target, reduction='avg')


class _CudaLooking(torch.Tensor):
    """A CPU tensor that reports ``is_cuda``: mmseg's FocalLoss only calls
    ``mmcv.ops.sigmoid_focal_loss`` on CUDA tensors (its CPU branch uses a
    pure-python path instead)."""

    @property
    def is_cuda(self):
        return True


@requires_lite
def test_mmseg_focal_loss_runs_through_fallback(monkeypatch):
    from mmseg.models.losses import focal_loss as mmseg_focal
    from mmseg.registry import MODELS

    assert mmseg_focal._sigmoid_focal_loss is compat.sigmoid_focal_loss
    calls = []

    def spy(*args):
        calls.append(args)
        return compat.sigmoid_focal_loss(*args)

    loss_fn = MODELS.build(dict(type='FocalLoss', use_sigmoid=True))
    monkeypatch.setattr(mmseg_focal, '_sigmoid_focal_loss', spy)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    g = torch.Generator().manual_seed(2)
    n, c, h, w = 2, 4, 3, 5
    logits = torch.randn(n, c, h, w, generator=g)
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[0, 0, :2] = 255  # ignored pixels
    x = logits.clone().requires_grad_()
    loss = loss_fn(x.as_subclass(_CudaLooking), target)
    assert len(calls) == 1

    flat = logits.permute(0, 2, 3, 1).reshape(-1, c)
    t = target.reshape(-1)
    valid = (t != 255).double()
    ref = _focal_reference(flat, torch.where(t == 255, 0, t), 2.0, 0.5, None)
    ref = (ref * valid[:, None]).mean()  # mmseg: elementwise mean
    torch.testing.assert_close(loss.double().as_subclass(torch.Tensor), ref)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.all(x.grad[0, :, 0, :2] == 0)  # ignored pixels: no grad


@requires_lite
def test_missing_compiled_op_imports_but_raises_on_use():
    from mmcv.ops import DeformConv2d

    with pytest.raises(RuntimeError, match='needs full mmcv'):
        DeformConv2d(3, 3, 3)
    with pytest.raises(RuntimeError, match='needs full mmcv'):
        mmcv.ops.roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5), (2, 2))
    assert 'roi_align' in repr(mmcv.ops.roi_align)


@requires_lite
def test_install_is_idempotent():
    before = sys.modules['mmcv.ops']
    assert compat.install_mmcv_ops_fallback() is False
    assert sys.modules['mmcv.ops'] is before
    assert mmcv.ops is before


@requires_lite
def test_install_on_fresh_interpreter_state(monkeypatch):
    monkeypatch.delitem(sys.modules, 'mmcv.ops')
    monkeypatch.setattr(mmcv, 'ops', mmcv.ops)  # restored afterwards
    assert compat.install_mmcv_ops_fallback() is True
    ops = sys.modules['mmcv.ops']
    assert isinstance(ops, compat._LiteOpsModule)
    assert mmcv.ops is ops
    assert ops.sigmoid_focal_loss is compat.sigmoid_focal_loss
    assert callable(ops.point_sample) and callable(ops.bilinear_grid_sample)


def test_does_nothing_with_compiled_ops(monkeypatch):
    monkeypatch.setattr(compat, '_has_compiled_mmcv_ops', lambda: True)
    monkeypatch.delitem(sys.modules, 'mmcv.ops', raising=False)
    before = getattr(mmcv, 'ops', None)
    assert compat.install_mmcv_ops_fallback() is False
    assert 'mmcv.ops' not in sys.modules
    assert getattr(mmcv, 'ops', None) is before


# --------------------------------------------------------------------------
# torch >= 2.6: safe loading of mmengine checkpoints
# --------------------------------------------------------------------------

LOSSES = (1.0, 2.0, 4.0)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


@pytest.fixture
def mmengine_ckpt(tmp_path):
    """A checkpoint with what mmengine's Runner.save_checkpoint writes."""
    hub = MessageHub.get_instance(f'test_compat_{tmp_path.name}')
    for v in LOSSES:
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 3)
    model = _model()
    ckpt = dict(
        meta=dict(
            epoch=0,
            iter=3,
            seed=np.int64(42),
            best_score=np.float64(1.5),
            hist=np.array([1, 2]),
            table=np.arange(6, dtype=np.float32).reshape(2, 3),
        ),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict(),
    )
    path = str(tmp_path / 'iter_3.pth')
    save_checkpoint(ckpt, path)
    return path, model


def _check_meta(meta):
    assert meta['seed'] == 42 and isinstance(meta['seed'], np.int64)
    assert meta['best_score'] == 1.5
    assert isinstance(meta['best_score'], np.float64)
    np.testing.assert_array_equal(meta['hist'], [1, 2])
    assert meta['table'].dtype == np.float32
    np.testing.assert_array_equal(meta['table'], np.arange(6).reshape(2, 3))


def test_plain_torch_load_of_mmengine_checkpoint(mmengine_ckpt):
    path, model = mmengine_ckpt
    ckpt = torch.load(path)  # weights_only=True is the default
    _check_meta(ckpt['meta'])
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(np.mean(LOSSES))
    assert buf.current() == 4.0 and buf.min() == 1.0 and buf.max() == 4.0
    assert buf.statistics('mean') == pytest.approx(np.mean(LOSSES))
    assert ckpt['message_hub']['runtime_info']['iter'] == 3
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ckpt['state_dict'][k], v)

    # resuming the message hub works from the safely loaded state
    hub = MessageHub.get_instance(f'test_compat_resumed_{id(ckpt)}')
    hub.load_state_dict(ckpt['message_hub'])
    assert hub.get_scalar('train/loss').mean() == pytest.approx(
        np.mean(LOSSES)
    )


def test_mmengine_checkpoint_needs_the_registration(mmengine_ckpt):
    """Without our allowlist entries the same file is refused."""
    path, _ = mmengine_ckpt
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
        assert compat.register_safe_checkpoint_globals()
        torch.load(path)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def test_register_is_repeatable(mmengine_ckpt):
    path, _ = mmengine_ckpt
    assert compat.register_safe_checkpoint_globals()
    assert compat.register_safe_checkpoint_globals()
    torch.load(path)


def test_mmengine_load_checkpoint(mmengine_ckpt):
    path, model = mmengine_ckpt
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ckpt = load_checkpoint(fresh, path, map_location='cpu')
    for k, v in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)
    _check_meta(ckpt['meta'])
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert buf.mean() == pytest.approx(np.mean(LOSSES))


def test_numpy1_checkpoint_loads():
    """numpy 1 pickles ``numpy.core.multiarray.*`` (numpy 2: ``_core``)."""
    obj = {'a': np.arange(3, dtype=np.float32), 's': np.float64(2.5)}
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    for old, new in (
        (b'numpy._core.multiarray', b'numpy.core.multiarray'),
        (b'numpy.core.multiarray', b'numpy._core.multiarray'),
    ):
        raw = raw.replace(old, new)
        loaded = torch.load(io.BytesIO(raw))
        np.testing.assert_array_equal(loaded['a'], obj['a'])
        assert loaded['s'] == 2.5


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _Prints:
    def __reduce__(self):
        return (print, ('hacked',))


class _Getattr:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


def _save(obj, tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': obj}}, path)
    return path


def test_code_in_checkpoint_is_refused(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    for obj in (_RunsCommand(marker), _Prints()):
        path = _save(obj, tmp_path)
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
        with pytest.raises(pickle.UnpicklingError):
            CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not marker.exists()
    assert 'hacked' not in capsys.readouterr().out


@pytest.mark.parametrize(
    'owner, name',
    [
        (HistoryBuffer, '__init__'),
        (HistoryBuffer, '__class__'),
        (HistoryBuffer, '_statistics_methods'),
        (HistoryBuffer, 'no_such_method'),
        (np.ndarray, '__class__'),
        (np.ndarray, 'tofile'),
        (np.dtype, 'mean'),
    ],
)
def test_crafted_getattr_is_refused(tmp_path, owner, name):
    path = _save(_Getattr(owner, name), tmp_path)
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        torch.load(path)


def test_history_buffer_getattr_allows_public_methods_only():
    get = compat._history_buffer_getattr
    assert get(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        get(HistoryBuffer, '__reduce_ex__')
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        get(MessageHub, 'mean')
