"""The inference path (BN folding, channels_last) and the layout-keeping
shuffle equal the eager model; the export-form pooling equals PyTorch's."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import revert_sync_batchnorm
from model_utils import SEG_CONFIG, randomize, real_frame

import litehrnet_seg  # noqa: F401
from litehrnet_seg.checkpoint import build_model
from litehrnet_seg.deploy import (
    ProjectThenUpsampleHead,
    TensorModel,
    fold_batch_norms,
    optimize,
)
from litehrnet_seg.models import layers
from litehrnet_seg.models.backbones import LiteHRNet

# Logits of a realistic model are O(10); fp32 rounding gives ~1e-6.
ATOL = 1e-4


def backbone(arch: str, with_head: bool) -> nn.Module:
    net = LiteHRNet(arch=arch, with_head=with_head)
    return randomize(net)


class Concat(nn.Module):
    """All backbone outputs flattened into one tensor, for comparison."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.cat([y.flatten(1) for y in self.net(x)], 1)


@pytest.mark.parametrize(
    'arch,with_head',
    [('18', True), ('18', False), ('30', True), ('naive_18', True)],
)
@pytest.mark.parametrize('size', [(64, 96), (97, 131)])
def test_optimized_backbone_equals_eager(arch, with_head, size):
    model = Concat(backbone(arch, with_head))
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        scale = expected.abs().max().item()
        for steps in [
            ('fold_bn',),
            ('fold_bn', 'channels_last'),
            ('coarse_first_fuse', 'fold_bn', 'channels_last'),
        ]:
            actual = optimize(model, steps)(x)
            diff = (actual - expected).abs().max().item()
            # Random deep nets reach |y| ~ 1e2-1e3 (L30), so relative to
            # the output scale; float rounding gives ~1e-7.
            assert diff < 1e-5 * scale, (steps, diff, scale)
    # The steps did change the network (not an accidental no-op).
    folded = optimize(model, ('fold_bn',))
    bns = [
        m
        for m in folded.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    assert not bns
    assert expected.abs().max() > 0.1
    coarse = optimize(model, ('coarse_first_fuse',))
    orders = {
        m.fuse_sum_order
        for m in coarse.modules()
        if isinstance(m, layers.LiteHRModule)
    }
    assert orders == {'coarse_first'}


@pytest.fixture(scope='module')
def seg_model():
    model = build_model(str(SEG_CONFIG))
    return TensorModel(randomize(revert_sync_batchnorm(model)))


@pytest.fixture(scope='module')
def concat_model():
    """The sample config with an HRNetV2 concat head (mmseg's FCNHead,
    resize_concat, one 1x1 conv), the head ``reorder_head`` rewrites;
    independent of the configs' default head."""
    from mmengine.config import Config
    from mmseg.registry import MODELS

    cfg = Config.fromfile(str(SEG_CONFIG))
    channels = MODELS.build(cfg.model.backbone).out_channels
    cfg.model.decode_head = dict(
        type='FCNHead',
        in_channels=list(channels),
        in_index=tuple(range(len(channels))),
        channels=sum(channels),
        input_transform='resize_concat',
        kernel_size=1,
        num_convs=1,
        concat_input=False,
        dropout_ratio=-1,
        num_classes=19,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
    )
    model = build_model(cfg)
    return TensorModel(randomize(revert_sync_batchnorm(model)))


@pytest.mark.parametrize('size', [None, (77, 135)])
def test_optimized_seg_model_equals_eager_on_real_frame(concat_model, size):
    seg_model = concat_model
    x = real_frame(seg_model, size)
    fast = optimize(
        seg_model,
        ('coarse_first_fuse', 'fold_bn', 'reorder_head', 'channels_last'),
    )
    with torch.no_grad():
        expected = seg_model(x)
        actual = fast(x)
    # The concat head now projects before upsampling.
    assert isinstance(fast.model.model.decode_head, ProjectThenUpsampleHead)
    assert actual.shape == expected.shape == (1, 19, *expected.shape[-2:])
    assert (actual - expected).abs().max().item() < ATOL
    # Predictions, what a user sees, are the same.
    assert torch.equal(actual.argmax(1), expected.argmax(1))
    # Input model untouched (optimize works on a copy).
    assert any(isinstance(m, nn.BatchNorm2d) for m in seg_model.modules())
    assert {
        m.fuse_sum_order
        for m in seg_model.modules()
        if isinstance(m, layers.LiteHRModule)
    } == {'sequential'}


def test_optimize_rejects_unknown_step_and_training_mode(seg_model):
    with pytest.raises(ValueError, match='Unknown optimization step'):
        optimize(seg_model, ('fold_bn', 'quantize'))
    with pytest.raises(ValueError, match='eval mode'):
        fold_batch_norms(backbone('18', True).train())


@pytest.mark.parametrize('channels_last', [False, True])
def test_concat_shuffle_is_bitwise_cat_then_shuffle(channels_last):
    x = torch.randn(2, 16, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.chunk(2, dim=1)
    # The official formulation, spelled out.
    cat = torch.cat((x1, x2), 1)
    ref = cat.reshape(2, 2, 8, 5, 7).transpose(1, 2).reshape(2, 16, 5, 7)
    out = layers.concat_shuffle(x1, x2)
    assert torch.equal(out, ref)
    assert torch.equal(layers.channel_shuffle(cat, 2), ref)
    assert (
        out.is_contiguous(memory_format=torch.channels_last) == channels_last
    )


@pytest.mark.parametrize(
    'in_size,out_size', [((32, 64), (4, 8)), ((63, 125), (8, 16))]
)
def test_export_form_pooling_equals_adaptive_pooling(
    monkeypatch, in_size, out_size
):
    x = torch.randn(2, 3, *in_size)
    expected = F.adaptive_avg_pool2d(x, out_size)
    monkeypatch.setattr(torch.compiler, 'is_exporting', lambda: True)
    actual = layers.adaptive_avg_pool(x, out_size)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


class _Pool(torch.nn.Module):
    def forward(self, x):
        return layers.adaptive_avg_pool(x, (4, 8))


@pytest.mark.parametrize('dynamic', [False, True])
def test_exported_pooling_is_plain_average_pooling_only_when_static(
    dynamic,
):
    """A static-shape export (the pose model's) whose bins are equal
    blocks gets one average pooling; a shape-dynamic one keeps the
    matmul form that holds for every size."""
    x = torch.randn(2, 3, 32, 64)
    shapes = None
    if dynamic:
        height = torch.export.Dim('height', min=32, max=512)
        shapes = ({2: height},)
    program = torch.export.export(_Pool(), (x,), dynamic_shapes=shapes)
    ops = {str(n.target) for n in program.graph.nodes}
    assert any('avg_pool2d' in op for op in ops) != dynamic
    assert any('matmul' in op for op in ops) == dynamic
    torch.testing.assert_close(
        program.module()(x), F.adaptive_avg_pool2d(x, (4, 8))
    )


@pytest.mark.parametrize('dynamic', [False, True])
def test_static_export_sums_fuse_branches_coarse_first(dynamic):
    """A static-shape export of a coarse-first fuse upsamples to the
    finest branch once (and stays equal to eager); a shape-dynamic one
    cannot know that the branches halve exactly and keeps the official
    order, which upsamples each coarser branch there."""
    # No blocks: only the fuse layers resize.
    module = layers.LiteHRModule(
        3, 0, (8, 16, 32), 8, 'LITE', fuse_sum_order='coarse_first'
    )
    module = randomize(module).eval()
    x = [
        torch.randn(1, c, 32 >> i, 48 >> i) for i, c in enumerate((8, 16, 32))
    ]
    shapes = None
    if dynamic:
        auto = torch.export.Dim.AUTO
        shapes = ([{2: auto, 3: auto}] * 3,)
    program = torch.export.export(module, (x,), dynamic_shapes=shapes)
    nodes = list(program.graph.nodes)
    branch0 = program.graph_signature.user_inputs[0]
    finest = next(
        str(n.meta['val'].shape[-2:]) for n in nodes if n.name == branch0
    )
    resized = [
        str(n.meta['val'].shape[-2:])
        for n in nodes
        if 'upsample_nearest' in str(n.target)
    ]
    assert resized.count(finest) == (2 if dynamic else 1), resized
    with torch.no_grad():
        expected = module(x)
    for out, ref in zip(program.module()(x), expected, strict=True):
        torch.testing.assert_close(out, ref)


def test_reordered_head_alone_equals_concat_head(concat_model):
    seg_model = concat_model
    x = real_frame(seg_model, (64, 96))
    with torch.no_grad():
        expected = seg_model(x)
        actual = optimize(seg_model, ('reorder_head',))(x)
    assert (actual - expected).abs().max().item() < ATOL


def test_reorder_refuses_heads_it_cannot_rewrite(concat_model):
    seg_model = concat_model
    head = seg_model.model.decode_head
    head.concat_input = True  # conv_cat would need the concatenation
    try:
        with pytest.raises(ValueError, match='not an HRNetV2-style'):
            ProjectThenUpsampleHead(head)
        # optimize leaves such heads alone instead of failing.
        fast = optimize(seg_model, ('reorder_head',))
        assert not isinstance(
            fast.model.model.decode_head, ProjectThenUpsampleHead
        )
    finally:
        head.concat_input = False


def test_cuda_graphs_step_falls_back_on_cpu_with_logged_message(seg_model):
    import logging

    from mmengine.logging import MMLogger

    from litehrnet_seg.deploy.inference_optimizer import CUDAGraphModel

    x = real_frame(seg_model, (64, 96))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        fast = optimize(seg_model, ('fold_bn', 'cuda_graphs'))
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert any('CUDA graphs need a CUDA device' in m for m in messages)
    assert not any(isinstance(m, CUDAGraphModel) for m in fast.modules())
    # The other requested steps still apply (the backbone's BNs all
    # follow convs; heads may hold BNs that fold_bn cannot fold).
    backbone_modules = fast.model.model.backbone.modules()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone_modules)
    with torch.no_grad():
        diff = (fast(x) - seg_model(x)).abs().max().item()
    assert diff < ATOL


def test_cuda_graph_model_runs_cpu_inputs_directly(seg_model):
    from litehrnet_seg.deploy.inference_optimizer import CUDAGraphModel

    x = real_frame(seg_model, (64, 96))
    wrapped = CUDAGraphModel(seg_model)
    with torch.no_grad():
        assert torch.equal(wrapped(x), seg_model(x))
    assert not wrapped.graphs  # nothing captured for a CPU input
