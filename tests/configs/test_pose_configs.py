"""Every pose config builds and encodes the published Lite-HRNet recipe."""

from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.dataset import Compose
from mmseg.registry import METRICS, MODELS

import litehrnet_seg  # noqa: F401  (registers the pose components)

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'pose'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
FULL = [p for p in CONFIGS if '-210e_' in p.name]
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _ids(paths):
    return [p.stem for p in paths]


def test_all_variants_present():
    names = {p.stem for p in CONFIGS}
    for arch in ('18', '30'):
        for data in ('coco-256x192', 'coco-384x288', 'mpii-256x256'):
            assert any(
                f'litehrnet{arch}_' in n and n.endswith(data) for n in names
            ), (arch, data)


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_model_builds_and_predicts_heatmaps(path):
    cfg = Config.fromfile(path)
    assert 'litehrnet_seg' in cfg.custom_imports['imports']
    model = MODELS.build(cfg.model).eval()
    width, height = cfg.model.head.decoder.input_size
    with torch.no_grad():
        heatmaps = model(torch.randn(1, 3, height, width), mode='tensor')
    keypoints = 16 if 'mpii' in path.name else 17
    assert heatmaps.shape == (1, keypoints, height // 4, width // 4)
    assert tuple(cfg.model.head.decoder.heatmap_size) == (
        width // 4,
        height // 4,
    )


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_pipelines_and_evaluators_build(path):
    cfg = Config.fromfile(path)
    width, height = cfg.model.head.decoder.input_size
    for name in DATALOADERS:
        pipeline = cfg[name].dataset.pipeline
        transforms = Compose(pipeline).transforms
        assert type(transforms[-1]).__name__ == 'PackPoseInputs'
        affine = [t for t in transforms if type(t).__name__ == 'TopdownAffine']
        assert len(affine) == 1
        assert tuple(affine[0].input_size) == (width, height)
    for name in ('val_evaluator', 'test_evaluator'):
        if path in FULL:  # the real annotation files are not here
            assert cfg[name].type in ('CocoMetric', 'MpiiPCKAccuracy')
        else:
            METRICS.build(cfg[name])


@pytest.mark.parametrize('path', FULL, ids=_ids(FULL))
def test_full_recipe(path):
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=2e-3)
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 500
    assert not warmup.by_epoch
    assert steps.type == 'MultiStepLR' and steps.milestones == [170, 200]
    assert cfg.train_cfg.max_epochs == 210
    gpus, batch = path.name.split('_')[2].split('-')[0].split('xb')
    assert cfg.train_dataloader.batch_size == int(batch)
    assert cfg.auto_scale_lr.base_batch_size == int(gpus) * int(batch)
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['TopdownRandomFlip']['prob'] == 0.5
    assert train['RandomHalfBody']['prob'] == 0.3
    assert train['RandomBBoxTransform']['rotate_factor'] == 30.0
    assert train['RandomBBoxTransform']['scale_factor'] == (0.75, 1.25)
    sigma = 3 if '384x288' in path.name else 2
    assert train['GenerateHeatmapTarget']['encoder']['sigma'] == sigma
    assert cfg.model.test_cfg.flip_test and cfg.model.test_cfg.shift_heatmap
    assert cfg.model.head.loss.use_target_weight
    if 'coco' in path.name:
        assert 'AP_H_56' in cfg.val_dataloader.dataset.bbox_file
        assert cfg.default_hooks.checkpoint.save_best == 'coco/AP'
    else:
        assert cfg.val_dataloader.dataset.headbox_file.endswith('.mat')
        assert cfg.default_hooks.checkpoint.save_best == 'pck/PCKh'


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_one_codec_for_targets_decoding_and_crops(path):
    """The head decodes with the codec the pipeline encodes with, and the
    crops have its input size; `codec` is a top-level key (tools such as
    export_onnx.py read it)."""
    cfg = Config.fromfile(path)
    codec = cfg.model.head.decoder
    assert cfg.codec == codec
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['GenerateHeatmapTarget']['encoder'] == codec
    for name in DATALOADERS:
        for t in cfg[name].dataset.pipeline:
            if t['type'] == 'TopdownAffine':
                assert tuple(t['input_size']) == tuple(codec.input_size)


def test_codecs_are_declared_once():
    """Heatmap geometry is written only in the codec bases (one per input
    size) and in the 384x288 recipe, which replaces the codec."""
    root = CONFIG_DIR.parent
    declaring = sorted(
        str(p.relative_to(root))
        for p in root.rglob('*.py')
        if 'heatmap_size' in p.read_text()
    )
    assert declaring == [
        '_base_/codecs/msra-heatmap_256x192.py',
        '_base_/codecs/msra-heatmap_256x256.py',
        'pose/topdown-heatmap_litehrnet18_8xb32-210e_coco-384x288.py',
    ]
