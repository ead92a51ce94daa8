"""Every shipped config loads, builds its model and pipelines, and the
full-recipe configs encode the Lite-HRNet paper's Cityscapes recipe."""

import copy
import functools
import re
from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.dataset import Compose
from mmseg.registry import METRICS, MODELS

import litehrnet_seg  # noqa: F401  (registers LiteHRNet and the datasets)

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
# Segmentation configs; pose and multi-task configs have their own tests.
CONFIGS = sorted(
    p
    for p in CONFIG_DIR.glob('**/*.py')
    if '_base_' not in p.relative_to(CONFIG_DIR).parts
    and p.parent.name == 'litehrnet'
)
# Configs named `4xb4-<iters>k_..._512x1024` (and the test submission,
# which inherits the 160k recipe) are the paper's training recipe.
FULL = [p for p in CONFIGS if '_4xb4-' in p.name]
SUBMISSION = [p for p in CONFIGS if 'test-submission' in p.name]
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _ids(paths):
    return [p.stem for p in paths]


@functools.cache
def _load(path):
    return Config.fromfile(str(path))


def load(path):
    return copy.deepcopy(_load(path))


def _iters_from_name(name):
    m = re.search(r'-(\d+)(k|i)_', name)
    assert m, f'no schedule in config name {name}'
    return int(m.group(1)) * (1000 if m.group(2) == 'k' else 1)


def _transform(pipeline, type_):
    found = [t for t in pipeline if t['type'] == type_]
    assert len(found) == 1, f'{type_} appears {len(found)}x in {pipeline}'
    return found[0]


def test_configs_found():
    assert len(CONFIGS) >= 10
    assert len(FULL) >= 6 and len(SUBMISSION) == 1


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_loads_and_imports_package(path):
    cfg = load(path)
    assert 'litehrnet_seg' in cfg.custom_imports['imports']
    assert not cfg.custom_imports.get('allow_failed_imports', False)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.backbone.type == 'LiteHRNet'
    assert cfg.model.decode_head.num_classes == 19


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_model_builds_and_forwards(path):
    cfg = load(path)
    arch = re.search(r'litehrnet(\d+)', path.name).group(1)
    assert cfg.model.backbone.arch == arch
    model = MODELS.build(cfg.model)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 128), mode='tensor')
    assert out.shape == (1, 19, 16, 32)  # logits at stride 4
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_pipelines_and_evaluators_build(path, tmp_path):
    cfg = load(path)
    for name in DATALOADERS:
        pipeline = cfg[name].dataset.pipeline
        transforms = Compose(pipeline).transforms
        assert len(transforms) == len(pipeline)
        assert type(transforms[-1]).__name__ == 'PackSegInputs'
        # resolved in the mmseg scope (mmcv has its own LoadAnnotations)
        for t in transforms:
            if type(t).__name__ == 'LoadAnnotations':
                assert type(t).__module__.startswith('mmseg.')
    for name in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg[name]
        if 'output_dir' in evaluator:  # don't write into the repo
            evaluator.output_dir = str(tmp_path / 'out')
        METRICS.build(evaluator)


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_name_matches_schedule_and_batch(path):
    cfg = load(path)
    gpus, batch = map(int, re.search(r'_(\d+)xb(\d+)-', path.name).groups())
    assert cfg.train_dataloader.batch_size == batch
    iters = _iters_from_name(path.name)
    # mmengine's loop with exact resume and SIGTERM saves
    assert cfg.train_cfg.type == 'SafeIterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == iters
    (poly,) = cfg.param_scheduler
    assert poly.type == 'PolyLR' and not poly.by_epoch
    assert poly.end == iters
    if 'auto_scale_lr' in cfg and gpus > 1:
        assert cfg.auto_scale_lr.base_batch_size == gpus * batch


@pytest.mark.parametrize('path', FULL, ids=_ids(FULL))
def test_full_recipe(path):
    cfg = load(path)
    iters = _iters_from_name(path.name)
    assert iters in (80000, 160000)

    # data: 512x1024 crops from 2048x1024 images rescaled 0.5-2.0
    assert cfg.crop_size == (512, 1024)
    assert cfg.model.data_preprocessor.size == (512, 1024)
    train = cfg.train_dataloader
    assert train.batch_size == 4  # x 4 GPUs = 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert train.sampler.type == 'InfiniteSampler' and train.sampler.shuffle
    assert train.dataset.type == 'CheckedCityscapesDataset'
    assert train.dataset.data_prefix.img_path == 'leftImg8bit/train'
    pipeline = train.dataset.pipeline
    resize = _transform(pipeline, 'RandomResize')
    assert resize.scale == (2048, 1024)
    assert resize.ratio_range == (0.5, 2.0) and resize.keep_ratio
    crop = _transform(pipeline, 'RandomCrop')
    assert crop.crop_size == (512, 1024) and crop.cat_max_ratio == 0.75
    assert _transform(pipeline, 'RandomFlip').prob == 0.5
    _transform(pipeline, 'PhotoMetricDistortion')
    order = [t['type'] for t in pipeline]
    assert order.index('RandomResize') < order.index('RandomCrop')
    assert order.index('RandomCrop') < order.index('PackSegInputs')
    val = cfg.val_dataloader.dataset
    assert val.data_prefix.img_path == 'leftImg8bit/val'
    test_resize = _transform(val.pipeline, 'Resize')
    assert test_resize.scale == (2048, 1024) and test_resize.keep_ratio

    # optimisation: SGD lr 0.01 momentum 0.9 wd 5e-4, poly decay
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'SGD'
    assert opt.lr == 0.01 and opt.momentum == 0.9
    assert opt.weight_decay == 5e-4
    (poly,) = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.power == 0.9
    assert poly.eta_min == 1e-4 and poly.begin == 0 and poly.end == iters
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_cfg.val_interval == iters // 10

    # model: SyncBN everywhere, trained from scratch
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    assert cfg.model.pretrained is None
    init = cfg.model.backbone.get('init_cfg')
    if 'init-from' in path.name:  # the documented cross-task init
        assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    else:  # the paper trains from scratch
        assert init is None
    assert cfg.load_from is None and not cfg.resume
    assert cfg.model.test_cfg.mode == 'whole'

    # evaluation and checkpoints
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.val_evaluator.iou_metrics == ['mIoU']
    ckpt = cfg.default_hooks.checkpoint
    # mmengine's CheckpointHook writing through the atomic file backend
    assert ckpt.type == 'CheckpointHook' and not ckpt.by_epoch
    assert ckpt.backend_args.backend == 'local_atomic'
    assert ckpt.save_best == 'mIoU' and ckpt.rule == 'greater'
    assert ckpt.interval == iters // 10


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_head_reads_the_right_branches(path):
    model = load(path).model
    head = model.decode_head
    assert head.input_transform == 'resize_concat'
    assert tuple(head.in_index) == (0, 1, 2, 3)
    assert tuple(model.backbone.out_indices) == (0, 1, 2, 3)
    if 'nohead' in path.name:
        assert model.backbone.with_head is False
        assert tuple(head.in_channels) == (40, 80, 160, 320)
    else:
        assert model.backbone.with_head is True
        assert tuple(head.in_channels) == (40, 40, 80, 160)


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_head_width_matches_the_name(path):
    """`fcn-concat_...`: the default light head (concat -> 32-channel 1x1
    mixing + BN + ReLU, computed before the upsampling -> classifier);
    `fcn-concat<N>_...`: mmseg's FCNHead mixing to N channels (all the
    concatenated ones: 320 on the IterativeHead outputs, 600 on the raw
    branches)."""
    head = load(path).model.decode_head
    width = re.match(r'fcn-concat(\d*)_', path.name).group(1)
    if not width:
        assert head.type == 'ProjectFirstConcatHead'
        assert head.channels == 32
    else:
        assert head.type == 'FCNHead'
        assert head.channels == int(width) == sum(head.in_channels)
        assert head.num_convs == 1 and head.kernel_size == 1
        assert not head.concat_input


def test_light_head_trains_end_to_end():
    """tests/end_to_end/test_seg_end_to_end.py trains the sample config through
    tools/train.py (loss falls, mIoU far above chance): that config must
    have the default light head."""
    (sample,) = [p for p in CONFIGS if '300i_cityscapes-sample' in p.name]
    head = load(sample).model.decode_head
    assert head.type == 'ProjectFirstConcatHead' and head.channels == 32
    e2e = Path(__file__).parents[1] / 'end_to_end' / 'test_seg_end_to_end.py'
    e2e = e2e.read_text()
    assert sample.name in e2e


def _without(cfg, *keys):
    return {k: v for k, v in cfg.items() if k not in keys}


def test_multitask_config_references_the_seg_model():
    """The multi-task config's backbone and decode head are the L18 seg
    model's (plain BN instead of SyncBN), not a restated copy."""
    seg = load(
        CONFIG_DIR
        / 'litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
    ).model
    multi = load(CONFIG_DIR / 'multitask/segpose_litehrnet18_sample.py').model
    assert multi.type == 'SegPoseMultiTaskModel'
    for part in ('backbone', 'decode_head'):
        assert _without(multi[part], 'norm_cfg') == (
            _without(seg[part], 'norm_cfg')
        )
        assert multi[part].norm_cfg == dict(type='BN', requires_grad=True)
    preprocessor = multi.data_preprocessor.preprocessors.seg
    assert preprocessor.size == (128, 256)
    assert _without(preprocessor, 'size') == (
        _without(seg.data_preprocessor, 'size')
    )


@pytest.mark.parametrize('path', SUBMISSION, ids=_ids(SUBMISSION))
def test_submission_config(path):
    cfg = load(path)
    evaluator = cfg.test_evaluator
    assert evaluator.type == 'CityscapesMetric'
    assert evaluator.format_only is True
    assert evaluator.output_dir
    assert 'iou_metrics' not in evaluator  # `_delete_` dropped IoUMetric's
    dataset = cfg.test_dataloader.dataset
    assert dataset.data_prefix.img_path == 'leftImg8bit/test'
    types = [t['type'] for t in dataset.pipeline]
    assert 'LoadAnnotations' not in types  # test labels are not public
    # validation during training is unchanged
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.val_dataloader.dataset.data_prefix.img_path == (
        'leftImg8bit/val'
    )


@pytest.mark.parametrize('path', FULL, ids=_ids(FULL))
def test_non_submission_tests_on_val(path):
    if path in SUBMISSION:
        pytest.skip('the submission config predicts the test split')
    cfg = load(path)
    assert cfg.test_evaluator.type == 'IoUMetric'
    assert cfg.test_dataloader.dataset.data_prefix.img_path == (
        'leftImg8bit/val'
    )
