"""Tests of the Lite-HRNet backbone (CPU, small inputs).

The official-equality tests compare against ``tests/data/litehrnet_reference``
(state-dict keys/shapes and outputs of mmpose 1.3.2's LiteHRNet under
deterministic weights, see that folder's README).
"""

import copy
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.utils.checkpoint
from mmengine.model import revert_sync_batchnorm
from torch.nn.modules.batchnorm import _BatchNorm

import litehrnet_seg  # noqa: F401  (registers LiteHRNet in mmseg's MODELS)
from litehrnet_seg.models.backbones.litehrnet import LiteHRNet
from litehrnet_seg.models.layers import lite_hr_module
from litehrnet_seg.models.layers.ops import resize_nearest

REF_DIR = Path(__file__).parents[2] / 'data' / 'litehrnet_reference'

# (fixture variant, arch) pairs covered by the reference fixture.
REFERENCE_VARIANTS = [
    ('litehrnet18', '18'),
    ('litehrnet30', '30'),
    ('naive_litehrnet18', 'naive_18'),
]
ARCHS = ('18', '30', 'naive_18', 'wider_naive_18')
# Widths of the four branches, highest resolution first.
BRANCH_CHANNELS = {
    '18': (40, 80, 160, 320),
    '30': (40, 80, 160, 320),
    'naive_18': (30, 60, 120, 240),
    'wider_naive_18': (40, 80, 160, 320),
}
# Measured parameter counts (with IterativeHead, without). The first two
# with-head numbers are the mmpose 1.x ones; all are cross-checked against
# the fixture's shapes in test_param_count_matches_fixture_shapes.
PARAM_COUNTS = {
    '18': (1_130_072, 1_054_032),
    '30': (1_763_020, 1_686_980),
    'naive_18': (759_838, 715_708),
    'wider_naive_18': (1_317_928, 1_241_888),
}
# Max |out - ref| allowed, relative to max |ref|. The true implementation
# is at ~5e-7 (float summation order), the 'clean' fuse at ~1.
REL_TOL = 1e-5
BUFFER_SUFFIXES = ('running_mean', 'running_var', 'num_batches_tracked')

# mmpose-style config of Lite-HRNet-18, written out as in mmpose configs.
EXTRA_18 = dict(
    stem=dict(stem_channels=32, out_channels=32, expand_ratio=1),
    num_stages=3,
    stages_spec=dict(
        num_modules=(2, 4, 2),
        num_branches=(2, 3, 4),
        num_blocks=(2, 2, 2),
        module_type=('LITE', 'LITE', 'LITE'),
        with_fuse=(True, True, True),
        reduce_ratios=(8, 8, 8),
        num_channels=((40, 80), (40, 80, 160), (40, 80, 160, 320)),
    ),
    with_head=True,
)


# ----------------------------------------------------------------- helpers


@functools.lru_cache
def reference_shapes() -> dict:
    with open(REF_DIR / 'state_dict_shapes.json') as f:
        return json.load(f)


@functools.lru_cache
def reference_outputs() -> dict:
    with np.load(REF_DIR / 'reference_outputs.npz') as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


def fill_reference_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Fill the state dict in place exactly as the fixture README says."""
    gen = torch.Generator().manual_seed(2021)
    state = model.state_dict()
    with torch.no_grad():
        for key in sorted(state):
            t = state[key]
            shape = t.shape
            if key.endswith('num_batches_tracked'):
                continue
            if key.endswith('running_var'):
                value = torch.rand(shape, generator=gen) * 0.5 + 0.75
            elif key.endswith('running_mean'):
                value = torch.randn(shape, generator=gen) * 0.1
            elif t.dim() == 4:
                fan_in = t[0].numel()
                value = torch.randn(shape, generator=gen) * 0.5
                value /= math.sqrt(fan_in)
            elif key.endswith('.weight'):
                value = 1 + 0.1 * torch.randn(shape, generator=gen)
            else:
                value = 0.1 * torch.randn(shape, generator=gen)
            t.copy_(value)
    return model


def shapes_of(model: torch.nn.Module) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def without_head(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith('head_layer.')}


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Load ``src``'s weights into ``dst`` (head keys dropped if needed)."""
    state = src.state_dict()
    if not getattr(dst, 'with_head', True):
        state = without_head(state)
    dst.load_state_dict(state)


@functools.lru_cache
def reference_models(arch: str) -> tuple[LiteHRNet, LiteHRNet]:
    """(with head, without head) models with the fixture weights, eval.

    Cached; callers must only run them in eval mode under no_grad.
    """
    head = fill_reference_weights(LiteHRNet(arch=arch, with_head=True))
    branches = LiteHRNet(arch=arch, with_head=False)
    copy_weights(head, branches)
    return head.eval(), branches.eval()


def assert_matches_reference(out: torch.Tensor, ref: torch.Tensor, name):
    assert out.shape == ref.shape, name
    assert out.dtype == torch.float32, name
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert rel <= REL_TOL, f'{name}: max abs diff / max |ref| = {rel:.3g}'


def relative_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def expected_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """Spatial sizes of the four branches: ceil-chain of stride-2 convs."""
    sizes = []
    for level in range(5):  # the stem halves twice, then once per branch
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        if level >= 1:
            sizes.append((h, w))
    return sizes


def expected_channels(arch: str, with_head: bool) -> tuple[int, ...]:
    widths = BRANCH_CHANNELS[arch]
    return widths[:1] + widths[:3] if with_head else widths


def batch(n=2, h=64, w=96, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=gen)


def batchnorms(model: torch.nn.Module) -> dict:
    return {
        n: m for n, m in model.named_modules() if isinstance(m, _BatchNorm)
    }


def bn_buffers(model: torch.nn.Module) -> dict:
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.endswith(BUFFER_SUFFIXES)
    }


def grads_after_backward(model: torch.nn.Module, x: torch.Tensor):
    model.zero_grad(set_to_none=True)
    outs = model(x)
    sum(o.sum() for o in outs).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return outs, grads


# ------------------------------------------------- official equality


@pytest.mark.parametrize('variant,arch', REFERENCE_VARIANTS)
def test_state_dict_matches_official(variant, arch):
    ref = reference_shapes()[variant]
    for with_head, expected in ((True, ref), (False, without_head(ref))):
        got = shapes_of(LiteHRNet(arch=arch, with_head=with_head))
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        assert not missing, f'missing keys: {missing[:5]}'
        assert not unexpected, f'unexpected keys: {unexpected[:5]}'
        wrong = [k for k in expected if got[k] != expected[k]]
        assert not wrong, f'wrong shapes: {wrong[:5]}'
    assert any(k.startswith('head_layer.') for k in ref)


@pytest.mark.parametrize('nhwc', [True, False], ids=['nhwc', 'nchw'])
@pytest.mark.parametrize('variant,arch', REFERENCE_VARIANTS)
def test_outputs_match_official(variant, arch, nhwc):
    refs = reference_outputs()
    head_model, branch_model = reference_models(arch)
    # CPU inference may run NHWC internally (opt-in); both paths match.
    head_model.cpu_channels_last = branch_model.cpu_channels_last = nhwc
    with torch.no_grad():
        heads = head_model(refs['input'])
        branches = branch_model(refs['input'])
    assert len(heads) == len(branches) == 4
    for i in range(4):
        name = f'{variant}/branch{i}'
        assert_matches_reference(branches[i], refs[name], name)
        name = f'{variant}/head{i}'
        assert_matches_reference(heads[i], refs[name], name)


@pytest.mark.parametrize('variant,arch', REFERENCE_VARIANTS)
def test_clean_fuse_differs_from_official(variant, arch):
    refs = reference_outputs()
    clean = LiteHRNet(arch=arch, with_head=True, fuse_mode='clean')
    copy_weights(reference_models(arch)[0], clean)
    with torch.no_grad():
        head0 = clean.eval()(refs['input'])[0]
    # Measured: 1.0 (18, 30) and 0.91 (naive_18).
    assert relative_diff(head0, refs[f'{variant}/head0']) > 0.5
    assert LiteHRNet(arch=arch).stage0[0].fuse_mode == 'official'


def count_fuse_resizes(model, x, monkeypatch) -> tuple[list, int]:
    """Outputs of ``model(x)`` and the pixels its fuse layers' nearest
    resizes wrote (per channel and image): their memory traffic."""
    calls = []

    def counting(y, size):
        calls.append(size[0] * size[1])
        return resize_nearest(y, size)

    with monkeypatch.context() as patch:
        patch.setattr(lite_hr_module, 'resize_nearest', counting)
        with torch.no_grad():
            outs = model(x)
    return outs, sum(calls)


@pytest.mark.parametrize('fuse_mode', ['official', 'clean'])
@pytest.mark.parametrize('variant,arch', REFERENCE_VARIANTS)
def test_coarse_first_fuse_sum_equals_sequential(
    variant, arch, fuse_mode, monkeypatch
):
    sequential = LiteHRNet(arch=arch, with_head=True, fuse_mode=fuse_mode)
    copy_weights(reference_models(arch)[0], sequential)
    coarse = copy.deepcopy(sequential)
    for module in coarse.modules():
        if isinstance(module, lite_hr_module.LiteHRModule):
            module.fuse_sum_order = 'coarse_first'
    sequential.eval(), coarse.eval()
    # 64x96: branches of 16x24 ... 2x3 halve exactly, the coarse-first
    # sum applies; 97x131 (25x33, 13x17, ...) falls back to the official
    # order, since nested nearest resizes would pick other pixels there.
    x = batch(h=64, w=96)
    expected, seq_pixels = count_fuse_resizes(sequential, x, monkeypatch)
    actual, coarse_pixels = count_fuse_resizes(coarse, x, monkeypatch)
    for out, ref in zip(actual, expected, strict=True):
        assert relative_diff(out, ref) <= REL_TOL
    # Measured: 6960 -> 4368 resized pixels (18, naive_18), 12168 -> 7704
    # (30): the stride-4 outputs of stages 3 and 4 upsample once, not two
    # or three times.
    assert coarse_pixels < 0.65 * seq_pixels
    odd = batch(h=97, w=131)
    expected, _ = count_fuse_resizes(sequential, odd, monkeypatch)
    actual, _ = count_fuse_resizes(coarse, odd, monkeypatch)
    for out, ref in zip(actual, expected, strict=True):
        assert torch.equal(out, ref)


def test_invalid_fuse_sum_order_raises():
    with pytest.raises(ValueError, match='fuse_sum_order'):
        LiteHRNet(arch='18', fuse_sum_order='fine_first')


# ------------------------------------------------- parameter counts


@pytest.mark.parametrize('arch', ARCHS)
def test_param_counts(arch):
    with_head, no_head = PARAM_COUNTS[arch]
    assert num_params(LiteHRNet(arch=arch, with_head=True)) == with_head
    assert num_params(LiteHRNet(arch=arch, with_head=False)) == no_head
    assert no_head < with_head


@pytest.mark.parametrize('variant,arch', REFERENCE_VARIANTS)
def test_param_count_matches_fixture_shapes(variant, arch):
    ref = reference_shapes()[variant]

    def count(shapes):
        return sum(
            math.prod(s)
            for k, s in shapes.items()
            if not k.endswith(BUFFER_SUFFIXES)
        )

    assert (count(ref), count(without_head(ref))) == PARAM_COUNTS[arch]


# ------------------------------------------------- shapes and attributes

SIZES = [(250, 190), (97, 131), (64, 96), (33, 17), (1, 1)]


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (0,)])
@pytest.mark.parametrize('with_head', [True, False])
@pytest.mark.parametrize('arch', ARCHS)
def test_output_shapes(arch, with_head, out_indices):
    model = LiteHRNet(
        arch=arch, with_head=with_head, out_indices=out_indices
    ).eval()
    all_channels = expected_channels(arch, with_head)
    channels = tuple(all_channels[i] for i in out_indices)
    assert model.out_channels == channels
    assert model.out_strides == tuple(4 * 2**i for i in out_indices)
    for h, w in SIZES:
        with torch.no_grad():
            outs = model(batch(1, h, w))
        sizes = expected_sizes(h, w)
        assert isinstance(outs, tuple)
        got = [tuple(o.shape) for o in outs]
        want = [(1, all_channels[i], *sizes[i]) for i in out_indices]
        assert got == want, f'input {h}x{w}'


def test_output_shapes_cityscapes_size():
    model = LiteHRNet(arch='18').eval()
    with torch.no_grad():
        outs = model(batch(1, 512, 1024))
    assert [tuple(o.shape) for o in outs] == [
        (1, 40, 128, 256),
        (1, 40, 64, 128),
        (1, 80, 32, 64),
        (1, 160, 16, 32),
    ]
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize(
    'with_head,channels',
    [(True, (40, 40, 80, 160)), (False, (40, 80, 160, 320))],
)
def test_out_channels_and_strides_attributes(with_head, channels):
    model = LiteHRNet(arch='18', with_head=with_head)
    assert model.out_channels == channels
    assert model.out_strides == (4, 8, 16, 32)
    model = LiteHRNet(arch='18', with_head=with_head, out_indices=(1, 3))
    assert model.out_channels == (channels[1], channels[3])
    assert model.out_strides == (8, 32)


@pytest.mark.parametrize('with_head', [True, False])
def test_out_indices_select_branches(with_head):
    full = reference_models('18')[0 if with_head else 1]
    part = LiteHRNet(arch='18', with_head=with_head, out_indices=(1, 3))
    copy_weights(full, part)
    x = batch(1, 64, 96)
    with torch.no_grad():
        want = full(x)
        got = part.eval()(x)
    assert len(got) == 2
    assert torch.equal(got[0], want[1])
    assert torch.equal(got[1], want[3])


# ------------------------------------------------- training behaviour


@pytest.mark.parametrize('with_head', [True, False])
@pytest.mark.parametrize('arch', ['18', 'naive_18'])
def test_every_parameter_gets_finite_gradient(arch, with_head):
    model = LiteHRNet(arch=arch, with_head=with_head)
    fill_reference_weights(model).train()
    _, grads = grads_after_backward(model, batch(2, 64, 96))
    no_grad = [n for n, g in grads.items() if g is None]
    assert not no_grad, f'no gradient: {no_grad[:5]}'
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f'non-finite gradient: {bad[:5]}'
    assert sum(g.abs().sum() for g in grads.values()) > 0


@pytest.mark.parametrize('arch', ['18', 'naive_18'])
def test_with_cp_matches_plain(arch, monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', spy)
    plain = fill_reference_weights(LiteHRNet(arch=arch)).train()
    ckpt = LiteHRNet(arch=arch, with_cp=True)
    copy_weights(plain, ckpt)
    ckpt.train()
    x = batch(2, 64, 96)
    outs_plain, grads_plain = grads_after_backward(plain, x)
    assert not calls
    outs_ckpt, grads_ckpt = grads_after_backward(ckpt, x)
    assert calls, 'with_cp=True never used activation checkpointing'
    for a, b in zip(outs_ckpt, outs_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert grads_ckpt.keys() == grads_plain.keys()
    for name, g in grads_ckpt.items():
        assert g is not None, name
        torch.testing.assert_close(
            g, grads_plain[name], rtol=1e-4, atol=1e-6, msg=name
        )


@pytest.mark.parametrize('norm_eval', [True, False])
def test_norm_eval(norm_eval):
    model = LiteHRNet(arch='18', norm_eval=norm_eval)
    assert model.train() is model
    assert model.eval() is model
    assert model.train() is model
    assert model.training and model.stem.training
    bns = batchnorms(model)
    assert bns
    assert all(m.training != norm_eval for m in bns.values())
    before = bn_buffers(model)
    with torch.no_grad():
        model(batch(2, 64, 96))
    after = bn_buffers(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if norm_eval:
        assert not changed, f'running stats changed: {changed[:5]}'
    else:  # control: the same forward does update them without norm_eval
        assert len(changed) == len(before)


FROZEN_PREFIXES = {
    -1: (),
    0: ('stem.',),
    1: ('stem.', 'transition0.', 'stage0.'),
    3: tuple(f'{m}{i}.' for i in range(3) for m in ('transition', 'stage'))
    + ('stem.',),
}


@pytest.mark.parametrize('frozen_stages', sorted(FROZEN_PREFIXES))
def test_frozen_stages(frozen_stages):
    prefixes = FROZEN_PREFIXES[frozen_stages]
    model = LiteHRNet(arch='18', frozen_stages=frozen_stages)
    for _ in range(2):  # at construction, then after train()
        for name, param in model.named_parameters():
            frozen = name.startswith(prefixes)
            assert param.requires_grad != frozen, name
        model.train()
        for name, bn in batchnorms(model).items():
            frozen = f'{name}.'.startswith(prefixes)
            assert bn.training != frozen, name
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith('head_layer.') for n in trainable)
    if frozen_stages < 2:
        assert any(n.startswith('stage2.') for n in trainable)


# ------------------------------------------------- determinism


def test_init_is_deterministic():
    def build(seed):
        torch.manual_seed(seed)
        model = LiteHRNet(arch='18')
        model.init_weights()
        return model.state_dict()

    first, second, other = build(0), build(0), build(1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    # init_cfg puts Normal(std=0.001) on the plain convs (transition and
    # fuse layers) and 1 on norms; ConvModule's own init_weights then
    # re-inits its conv with Kaiming (mmengine runs children after the
    # parent's init_cfg), exactly as in mmpose.
    assert 0.0005 < first['transition0.0.0.weight'].std() < 0.002
    assert 0.0005 < first['stage0.0.fuse_layers.0.1.0.weight'].std() < 0.002
    assert first['stem.conv1.conv.weight'].std() > 0.01
    norm_weights = [k for k in first if k.endswith('bn.weight')]
    assert norm_weights
    assert all((first[k] == 1).all() for k in norm_weights)


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_forward_is_deterministic(mode):
    model = fill_reference_weights(LiteHRNet(arch='18'))
    getattr(model, mode)()
    x = batch(2, 64, 96)
    with torch.no_grad():
        first, second = model(x), model(x)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_cpu_channels_last_inference_equals_nchw(mode):
    """With ``cpu_channels_last`` CPU inference forwards run in NHWC
    internally and equal the plain NCHW network (the default) up to float
    rounding, in the caller's layout; forwards with gradients stay NCHW."""
    nchw = fill_reference_weights(LiteHRNet(arch='18'))
    assert not nchw.cpu_channels_last  # default: official numerics
    nhwc = copy.deepcopy(nchw)
    nhwc.cpu_channels_last = True
    layouts = []
    nhwc.stem.conv1.register_forward_pre_hook(
        lambda m, args: layouts.append(
            args[0].is_contiguous(memory_format=torch.channels_last)
        )
    )
    getattr(nhwc, mode)()
    getattr(nchw, mode)()
    x = batch(2, 64, 96)
    with torch.no_grad():
        outs, ref_outs = nhwc(x), nchw(x)
    assert layouts == [True]  # it did run in channels_last
    # Train-mode BN statistics sum in another order: 1.7e-5 seen.
    tol = REL_TOL if mode == 'eval' else 1e-4
    for out, ref in zip(outs, ref_outs, strict=True):
        assert out.is_contiguous()  # NCHW in, NCHW out
        assert relative_diff(out, ref) <= tol
    # A channels_last input is the caller's choice: kept as it was.
    with torch.no_grad():
        outs = nhwc(x.contiguous(memory_format=torch.channels_last))
    assert outs[0].is_contiguous(memory_format=torch.channels_last)
    # With gradients on, the NCHW network runs unchanged.
    nhwc(x)
    assert layouts == [True, True, False]


# ------------------------------------------------- configuration errors


def test_unknown_arch_lists_valid_names():
    with pytest.raises(ValueError) as err:
        LiteHRNet(arch='42')
    for name in ARCHS:
        assert repr(name) in str(err.value)


def test_explicit_extra_builds_arch_18():
    want = shapes_of(LiteHRNet(arch='18'))
    assert shapes_of(LiteHRNet(extra=copy.deepcopy(EXTRA_18))) == want
    # ``arch`` is ignored when ``extra`` is given.
    assert shapes_of(LiteHRNet(arch='30', extra=EXTRA_18)) == want
    no_head = dict(copy.deepcopy(EXTRA_18), with_head=False)
    assert shapes_of(LiteHRNet(extra=no_head)) == without_head(want)
    assert EXTRA_18['with_head'] is True  # not mutated by the builds


def _drop(*path):
    def mutate(extra):
        for key in path[:-1]:
            extra = extra[key]
        del extra[path[-1]]

    return mutate


def _set(value, *path):
    def mutate(extra):
        for key in path[:-1]:
            extra = extra[key]
        extra[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    'mutate,match',
    [
        (_drop('stages_spec'), 'stages_spec'),
        (_drop('stem'), 'stem'),
        (_drop('num_stages'), 'num_stages'),
        (_drop('stages_spec', 'num_channels'), 'num_channels'),
        (_set((2, 4), 'stages_spec', 'num_modules'), 'num_modules'),
        (_set((8, 8), 'stages_spec', 'reduce_ratios'), 'reduce_ratios'),
        (_set((2, 3, 3), 'stages_spec', 'num_branches'), 'num_branches'),
        (_set(('LITE', 'FOO', 'LITE'), 'stages_spec', 'module_type'), 'FOO'),
    ],
    ids=[
        'no-stages_spec',
        'no-stem',
        'no-num_stages',
        'no-num_channels',
        'short-num_modules',
        'short-reduce_ratios',
        'num_branches-vs-channels',
        'bad-module_type',
    ],
)
def test_malformed_extra_raises(mutate, match):
    extra = copy.deepcopy(EXTRA_18)
    mutate(extra)
    with pytest.raises(ValueError, match=match):
        LiteHRNet(extra=extra)


@pytest.mark.parametrize(
    'with_head,out_indices',
    [(True, ()), (True, (4,)), (True, (-1,)), (True, (0, 4)), (False, (5,))],
)
def test_invalid_out_indices_raise(with_head, out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        LiteHRNet(arch='18', with_head=with_head, out_indices=out_indices)


def test_invalid_fuse_mode_raises():
    with pytest.raises(ValueError, match='fuse_mode'):
        LiteHRNet(arch='18', fuse_mode='textbook')


# ------------------------------------------------- SyncBN and registry


def test_sync_bn_builds_and_runs_without_distributed():
    assert not (
        torch.distributed.is_available() and torch.distributed.is_initialized()
    )
    model = LiteHRNet(arch='18', norm_cfg=dict(type='SyncBN'))
    norms = batchnorms(model).values()
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    fill_reference_weights(model).eval()
    x = batch(2, 64, 96)
    with torch.no_grad():
        sync_outs = model(x)
    reverted = revert_sync_batchnorm(copy.deepcopy(model)).eval()
    assert not any(
        isinstance(m, torch.nn.SyncBatchNorm) for m in reverted.modules()
    )
    with torch.no_grad():
        bn_outs = reverted(x)
    for a, b in zip(sync_outs, bn_outs, strict=True):
        torch.testing.assert_close(a, b)
    # In a single process, train mode falls back to plain BN (observed
    # with torch 2.x on CPU); the reverted model trains in any case.
    for net in (model, reverted):
        outs = net.train()(x)
        sum(o.sum() for o in outs).backward()


def test_build_from_registry():
    from mmseg.registry import MODELS

    model = MODELS.build(dict(type='LiteHRNet', arch='18'))
    assert isinstance(model, LiteHRNet)
    assert num_params(model) == PARAM_COUNTS['18'][0]
    model = MODELS.build(
        dict(type='LiteHRNet', arch='30', with_head=False, out_indices=(0,))
    )
    assert num_params(model) == PARAM_COUNTS['30'][1]
    assert model.out_channels == (40,)
