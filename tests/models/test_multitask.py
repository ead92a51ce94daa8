"""Joint segmentation + pose training on one Lite-HRNet core.

A short CPU run of the multi-task sample config through the real
``tools/train.py`` (bundled Cityscapes frame, converted, + bundled COCO
images): both task losses fall, one validation reports ``mIoU`` and
``coco/AP``, and the checkpoint loads into the single-task segmentation and
pose models, which then predict exactly what the multi-task model predicts.
Plus fast unit tests of the task samplers, the metric filter and the model's
task dispatch.
"""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, METRICS, MODELS
from mmseg.structures import SegDataSample
from torch.utils.data import Dataset

import litehrnet_seg  # noqa: F401
from litehrnet_seg.datasets import (
    MultiTaskDataset,
    TaskBatchSampler,
    TaskSequentialBatchSampler,
)
from litehrnet_seg.structures import PoseDataSample, infer_task

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'multitask' / 'segpose_litehrnet18_sample.py'
SEG_CONFIG = (
    ROOT
    / 'configs'
    / 'litehrnet'
    / 'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)
POSE_CONFIG = (
    ROOT
    / 'configs'
    / 'pose'
    / 'topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py'
)
COCO = ROOT / 'tests' / 'data' / 'coco'
ITERS = 60  # 30 steps per task


def data_options(seg_root: Path) -> list[str]:
    options = []
    for split in ('train', 'val', 'test'):
        datasets = f'{split}_dataloader.dataset.datasets'
        options += [
            f'{datasets}.seg.data_root={seg_root}',
            f'{datasets}.pose.data_root={COCO}',
        ]
    for split in ('val', 'test'):
        options.append(
            f'{split}_evaluator.1.metric.ann_file={COCO / "test_coco.json"}'
        )
    return options


@pytest.fixture(scope='module')
def trained(tmp_path_factory, run_tool, cityscapes_sample):
    tmp = tmp_path_factory.mktemp('multitask')
    seg_root = cityscapes_sample
    work_dir = tmp / 'work_dir'
    options = data_options(seg_root)
    run_tool(
        str(ROOT / 'tools/train.py'),
        str(CONFIG),
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *options,
        f'train_cfg.max_iters={ITERS}',
        f'train_cfg.val_interval={ITERS}',
        f'default_hooks.checkpoint.interval={ITERS}',
        f'param_scheduler.1.end={ITERS}',
        cwd=tmp,
    )
    scalars = [
        json.loads(line)
        for p in sorted(work_dir.glob('*/vis_data/scalars.json'))
        for line in p.read_text().split('\n')
        if line.strip()
    ]
    return dict(
        tmp=tmp,
        seg_root=seg_root,
        options=options,
        scalars=scalars,
        checkpoint=work_dir / f'iter_{ITERS}.pth',
    )


@pytest.mark.slow
def test_both_task_losses_decrease(trained):
    seg = [
        r['seg.decode.loss_ce']
        for r in trained['scalars']
        if 'seg.decode.loss_ce' in r
    ]
    pose = [
        r['pose.loss_kpt'] for r in trained['scalars'] if 'pose.loss_kpt' in r
    ]
    # Every train log (iteration 2, the end of the first task round, then
    # every 10) carries both tasks' window-averaged losses.
    assert len(seg) == len(pose) == ITERS // 10 + 1, (seg, pose)
    assert seg[-1] < 0.5 * seg[0], seg
    assert pose[-1] < 0.7 * pose[0], pose


@pytest.mark.slow
def test_validation_reports_miou_and_coco_ap(trained):
    evals = [r for r in trained['scalars'] if 'mIoU' in r or 'coco/AP' in r]
    assert len(evals) == 1, evals
    record = evals[0]
    assert 0.0 < record['mIoU'] <= 100.0
    assert 0.0 <= record['coco/AP'] <= 1.0
    assert not math.isnan(record['coco/AP'])


def build(config: Path, options: list[str] | None = None):
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(dict(o.split('=', 1) for o in options))
    init_default_scope('mmseg')
    return cfg, MODELS.build(cfg.model)


def load_filtered(model, state_dict: dict, prefixes: tuple[str, ...]):
    sub = {k: v for k, v in state_dict.items() if k.startswith(prefixes)}
    result = model.load_state_dict(sub, strict=False)
    params = [k for k in model.state_dict() if k.startswith(prefixes)]
    assert params and len(sub) == len(params), (len(sub), len(params))
    return result


@pytest.fixture(scope='module')
def models(trained):
    ckpt = torch.load(trained['checkpoint'], map_location='cpu')
    state = ckpt['state_dict']
    cfg, multi = build(CONFIG, trained['options'])
    multi.load_state_dict(state, strict=True)
    _, seg = build(SEG_CONFIG)
    seg_res = load_filtered(seg, state, ('backbone.', 'decode_head.'))
    _, pose = build(POSE_CONFIG)
    pose_res = load_filtered(pose, state, ('backbone.', 'head.'))
    for model in (multi, seg, pose):
        model.eval()
    return dict(
        cfg=cfg,
        multi=multi,
        seg=seg,
        pose=pose,
        seg_res=seg_res,
        pose_res=pose_res,
    )


@pytest.mark.slow
def test_checkpoint_loads_into_single_task_models(models):
    for key in ('seg_res', 'pose_res'):
        res = models[key]
        assert not res.missing_keys, res.missing_keys
        assert not res.unexpected_keys, res.unexpected_keys


@pytest.mark.slow
def test_single_task_tensors_equal_multitask(models):
    torch.manual_seed(0)
    with torch.no_grad():
        x = torch.randn(2, 3, 128, 256)
        assert torch.equal(
            models['seg'](x, mode='tensor'),
            models['multi'](x, mode='tensor', task='seg'),
        )
        x = torch.randn(2, 3, 256, 192)
        assert torch.equal(
            models['pose'](x, mode='tensor'),
            models['multi'](x, mode='tensor', task='pose'),
        )
        both = models['multi'](x, mode='tensor')
        assert set(both) == {'seg', 'pose'}


def _val_batch(cfg: Config, task: str, n: int) -> dict:
    ds_cfg = cfg.val_dataloader.dataset.datasets[task]
    dataset = DATASETS.build(ds_cfg)
    return pseudo_collate([dataset[i] for i in range(n)])


@pytest.mark.slow
def test_single_task_predictions_equal_multitask(models):
    cfg = models['cfg']
    with torch.no_grad():
        batch = _val_batch(cfg, 'seg', 1)
        multi = models['multi'].test_step(batch)
        single = models['seg'].test_step(_val_batch(cfg, 'seg', 1))
        assert isinstance(multi[0], SegDataSample)
        assert multi[0].task == 'seg'
        assert torch.equal(
            multi[0].pred_sem_seg.data, single[0].pred_sem_seg.data
        )
        assert torch.equal(multi[0].seg_logits.data, single[0].seg_logits.data)

        multi = models['multi'].test_step(_val_batch(cfg, 'pose', 4))
        single = models['pose'].test_step(_val_batch(cfg, 'pose', 4))
        assert isinstance(multi[0], PoseDataSample)
        for m, s in zip(multi, single, strict=True):
            np.testing.assert_array_equal(
                m.pred_instances.keypoints, s.pred_instances.keypoints
            )
            np.testing.assert_array_equal(
                m.pred_instances.keypoint_scores,
                s.pred_instances.keypoint_scores,
            )


# --------------------------------------------------------------------------
# Unit tests (no training)
# --------------------------------------------------------------------------


class _Range(Dataset):
    def __init__(self, n: int, tag: str) -> None:
        self.n, self.tag = n, tag

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.tag, i


class _Sampler:
    def __init__(self, dataset) -> None:
        self.dataset, self.seed = dataset, 0


def _dataset(n_seg: int = 5, n_pose: int = 7) -> MultiTaskDataset:
    return MultiTaskDataset(
        dict(seg=_Range(n_seg, 'seg'), pose=_Range(n_pose, 'pose'))
    )


def test_task_batch_sampler_ratio_and_purity():
    ds = _dataset()
    sampler = TaskBatchSampler(
        _Sampler(ds),
        batch_sizes=dict(seg=2, pose=3),
        ratio=dict(seg=2, pose=1),
    )
    assert sampler.task_schedule(6) == ['seg', 'pose', 'seg'] * 2
    stream = iter(sampler)  # endless
    batches = list(itertools.islice(stream, len(sampler)))
    assert len(sampler) == 9  # pose: 3 batches at 1 step in 3
    seen = {'seg': set(), 'pose': set()}
    for batch in batches:
        items = [ds[i] for i in batch]
        tasks = {t for t, _ in items}
        assert len(tasks) == 1
        task = tasks.pop()
        assert len(batch) == dict(seg=2, pose=3)[task]
        seen[task].update(i for _, i in items)
    # One "epoch" shows every sample of every task.
    assert seen == {'seg': set(range(5)), 'pose': set(range(7))}
    # The stream goes on, reshuffled, in the same task order.
    more = list(itertools.islice(stream, len(sampler)))
    assert [ds[b[0]][0] for b in more] == [ds[b[0]][0] for b in batches]
    assert more != batches


def test_task_sequential_batch_sampler_covers_once():
    ds = _dataset()
    sampler = TaskSequentialBatchSampler(
        _Sampler(ds), batch_sizes=dict(seg=1, pose=4)
    )
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 + 2
    assert [i for b in batches for i in b] == list(range(12))
    assert [len(b) for b in batches] == [1] * 5 + [4, 3]


def test_infer_task_and_mixed_batches():
    assert infer_task([SegDataSample()]) == 'seg'
    assert infer_task([PoseDataSample(), PoseDataSample()]) == 'pose'
    with pytest.raises(ValueError, match='one task'):
        infer_task([SegDataSample(), PoseDataSample()])
    with pytest.raises(TypeError):
        infer_task([object()])


def test_task_filtered_metric_routes_samples():
    init_default_scope('mmseg')
    metric = METRICS.build(
        dict(
            type='TaskFilteredMetric',
            task='seg',
            metric=dict(type='IoUMetric', iou_metrics=['mIoU']),
        )
    )
    metric.dataset_meta = dict(
        seg=dict(classes=('a', 'b')), pose=dict(classes=('person',))
    )
    assert metric.dataset_meta == dict(classes=('a', 'b'))
    seg = SegDataSample()
    seg.set_metainfo(dict(task='seg'))
    seg.pred_sem_seg = PixelData(data=torch.tensor([[[0, 1], [1, 1]]]))
    seg.gt_sem_seg = PixelData(data=torch.tensor([[[0, 1], [0, 1]]]))
    pose = PoseDataSample()
    pose.set_metainfo(dict(task='pose'))
    metric.process({}, [pose.to_dict()])
    assert not metric.metric.results
    metric.process({}, [seg.to_dict()])
    assert len(metric.metric.results) == 1
    result = metric.evaluate(10)
    assert result['mIoU'] == pytest.approx(58.33, abs=0.01)
