"""``bad_sample_policy`` ('raise' / 'skip') of the seg and pose datasets,
and the BadSampleReportHook that logs the number of skipped samples."""

import copy
import json
import logging
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmseg.registry import DATASETS, HOOKS
from torch.utils.data import DataLoader

import litehrnet_seg  # noqa: F401  (registers the modules under test)
from litehrnet_seg.datasets.integrity import DataError, SkipCounter

DATA = Path(__file__).parents[2] / 'data'
H, W = 16, 32
FRAMES = ('aachen_000000_000019', 'aachen_000001_000019', 'bremen_0_1')
SEG_PIPELINE = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='CheckSegSample'),
]


@pytest.fixture
def logs():
    """Messages logged through mmengine's current logger."""
    messages = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = ListHandler(level=logging.DEBUG)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def seg_paths(root: Path, frame: str) -> tuple[Path, Path]:
    city = frame.split('_')[0]
    img = root / 'leftImg8bit' / 'train' / city / f'{frame}_leftImg8bit.png'
    label = root / 'gtFine' / 'train' / city
    return img, label / f'{frame}_gtFine_labelTrainIds.png'


def make_cityscapes(root: Path) -> None:
    rng = np.random.default_rng(0)
    for frame in FRAMES:
        img, label = seg_paths(root, frame)
        for path, array in (
            (img, rng.integers(0, 256, (H, W, 3), dtype=np.uint8)),
            (label, rng.integers(0, 19, (H, W), dtype=np.uint8)),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), array)


def seg_dataset(root: Path, **kwargs):
    cfg = dict(
        type='CheckedCityscapesDataset',
        data_root=str(root),
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'
        ),
        pipeline=SEG_PIPELINE,
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


@pytest.fixture
def corrupt_seg(tmp_path):
    """A Cityscapes folder whose first image (index 0) is corrupt."""
    make_cityscapes(tmp_path)
    bad, _ = seg_paths(tmp_path, FRAMES[0])
    bad.write_bytes(b'garbage')
    return tmp_path, bad


def always(idx):
    """Make the refetch deterministic (mmengine draws a random index)."""
    return lambda: idx


# ----------------------------------------------------------------- policy


@pytest.mark.parametrize('policy', ['ignore', 'SKIP', None])
@pytest.mark.parametrize('kind', ['seg', 'coco', 'mpii'])
def test_invalid_policy_lists_valid_ones(tmp_path, policy, kind):
    make_cityscapes(tmp_path)
    with pytest.raises(ValueError) as exc:
        if kind == 'seg':
            seg_dataset(tmp_path, bad_sample_policy=policy)
        else:
            DATASETS.build(
                dict(
                    type='CocoDataset' if kind == 'coco' else 'MpiiDataset',
                    data_root=str(DATA / kind),
                    ann_file=f'test_{kind}.json',
                    bad_sample_policy=policy,
                )
            )
    msg = str(exc.value)
    assert "bad_sample_policy must be one of 'raise', 'skip'" in msg
    assert repr(policy) in msg


def test_raise_names_the_corrupt_image(corrupt_seg):
    root, bad = corrupt_seg
    ds = seg_dataset(root)  # 'raise' is the default
    assert ds.bad_sample_policy == 'raise'
    with pytest.raises(DataError) as exc:
        ds[0]
    assert f'Cannot decode image file {bad}' in str(exc.value)
    assert ds.num_skipped == 0


def test_skip_returns_another_sample_logs_and_counts(corrupt_seg, logs):
    root, bad = corrupt_seg
    ds = seg_dataset(root, bad_sample_policy='skip')
    ds._rand_another = always(1)
    out = ds[0]
    assert out['img_path'] == str(seg_paths(root, FRAMES[1])[0])
    assert ds.num_skipped == 1
    (warning,) = [m for m in logs if 'skipped bad sample' in m]
    assert warning.startswith('CheckedCityscapesDataset: skipped bad sample 0')
    assert f'img_path {bad}' in warning
    assert f'Cannot decode image file {bad}' in warning
    assert '[1 skipped so far' in warning
    ds[1], ds[2]  # good samples are not counted
    assert ds.num_skipped == 1


def test_skip_bad_label_ids(tmp_path, logs):
    make_cityscapes(tmp_path)
    _, label = seg_paths(tmp_path, FRAMES[2])
    assert cv2.imwrite(str(label), np.full((H, W), 50, np.uint8))
    ds = seg_dataset(tmp_path, bad_sample_policy='skip')
    ds._rand_another = always(0)
    assert ds[2]['seg_map_path'] == str(seg_paths(tmp_path, FRAMES[0])[1])
    assert ds.num_skipped == 1
    assert any(f'label {label}' in m and '50 (' in m for m in logs)


def test_skip_count_includes_dataloader_workers(corrupt_seg):
    root, bad = corrupt_seg
    ds = seg_dataset(root, bad_sample_policy='skip')
    ds._rand_another = always(2)
    loader = DataLoader(
        ds,
        batch_size=1,
        num_workers=2,
        collate_fn=lambda batch: batch[0]['img_path'],
        multiprocessing_context='fork',
    )
    paths = list(loader)
    assert str(bad) not in paths and len(paths) == len(FRAMES)
    assert ds.num_skipped == 1  # counted in a worker, seen here


def test_skip_gives_up_after_max_refetch_bad_samples(tmp_path):
    make_cityscapes(tmp_path)
    for frame in FRAMES:
        seg_paths(tmp_path, frame)[0].write_bytes(b'')
    ds = seg_dataset(tmp_path, bad_sample_policy='skip', max_refetch=3)
    with pytest.raises(RuntimeError, match=r'4 bad samples in a row'):
        ds[0]


def test_test_mode_always_raises(corrupt_seg, logs):
    root, bad = corrupt_seg
    ds = seg_dataset(root, bad_sample_policy='skip', test_mode=True)
    assert any('no effect in test mode' in m for m in logs)
    with pytest.raises(DataError, match='Cannot decode image'):
        ds[0]


def test_skip_drops_images_without_label(tmp_path, logs):
    make_cityscapes(tmp_path)
    _, label = seg_paths(tmp_path, FRAMES[1])
    label.unlink()
    with pytest.raises(DataError, match=str(label)):
        seg_dataset(tmp_path)
    ds = seg_dataset(tmp_path, bad_sample_policy='skip')
    assert len(ds) == 2 and ds.num_skipped == 1
    assert any(str(label) in m for m in logs)


def bug(results):
    raise ValueError('a bug in a transform, not bad data')


@pytest.mark.parametrize(
    'pipeline, idx, error',
    [
        # A good sample (index 1) through a buggy transform.
        ([dict(type='LoadImageFromFileChecked'), bug], 1, ValueError),
        # mmcv's plain loader on the corrupt image: an AssertionError.
        ([dict(type='LoadImageFromFile')], 0, AssertionError),
    ],
)
def test_skip_does_not_hide_other_errors(
    corrupt_seg, logs, pipeline, idx, error
):
    root, _ = corrupt_seg
    ds = seg_dataset(root, bad_sample_policy='skip', pipeline=pipeline)
    ds._rand_another = always(2)
    with pytest.raises(error) as exc:
        ds[idx]
    assert not isinstance(exc.value, DataError)
    assert 'not a data error: not skipped' in exc.value.__notes__[0]
    assert ds.num_skipped == 0
    assert not any('skipped bad' in m for m in logs)


def test_counter_is_copied_detached():
    counter = SkipCounter()
    counter.increment()
    for copied in (
        copy.deepcopy(counter),
        pickle.loads(pickle.dumps(counter)),
    ):
        assert copied.value == 1 and not copied.shared
        copied.increment()
    assert counter.value == 1


# ------------------------------------------------------------------- pose


@pytest.fixture
def coco_copy(tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(DATA / 'coco', root)
    return root


def coco_dataset(root: Path, **kwargs):
    cfg = dict(
        type='CocoDataset',
        data_root=str(root),
        ann_file='test_coco.json',
        pipeline=[dict(type='LoadImageFromFileChecked')],
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_pose_corrupt_image_raise_and_skip(coco_copy, logs):
    bad = coco_copy / '000000000785.jpg'  # the image of item 0
    bad.write_bytes(b'garbage')
    ds = coco_dataset(coco_copy)
    with pytest.raises(DataError) as exc:
        ds[0]
    assert f'Cannot decode image file {bad}' in str(exc.value)

    ds = coco_dataset(coco_copy, bad_sample_policy='skip')
    ids = [ds.get_data_info(i)['img_id'] for i in range(len(ds))]
    assert ids[0] == 785
    other = next(i for i, img_id in enumerate(ids) if img_id != 785)
    ds._rand_another = always(other)
    assert ds[0]['img_path'] != str(bad)
    assert ds.num_skipped == 1
    assert any(
        'CocoDataset: skipped bad sample 0' in m and str(bad) in m
        for m in logs
    )


def test_pose_wrong_keypoint_array_raise_and_skip(coco_copy, logs):
    ann_file = coco_copy / 'test_coco.json'
    content = json.loads(ann_file.read_text())
    bad = content['annotations'][0]
    bad['keypoints'] = bad['keypoints'][:50]
    ann_file.write_text(json.dumps(content))
    with pytest.raises(ValueError) as exc:
        coco_dataset(coco_copy)
    assert f'{ann_file}: annotation id {bad["id"]}' in str(exc.value)

    full = coco_dataset(DATA / 'coco')
    ds = coco_dataset(coco_copy, bad_sample_policy='skip')
    assert len(ds) == len(full) - 1 and ds.num_skipped == 1
    kept = {ds.get_data_info(i)['id'] for i in range(len(ds))}
    assert bad['id'] not in kept
    (warning,) = [m for m in logs if 'skipped bad sample' in m]
    assert f'annotation id {bad["id"]}: field "keypoints" has 50' in warning


def test_mpii_joints_of_length_15_skip(tmp_path, logs):
    ann_file = tmp_path / 'mpii.json'
    content = json.loads((DATA / 'mpii' / 'test_mpii.json').read_text())
    content[1]['joints'] = content[1]['joints'][:15]
    ann_file.write_text(json.dumps(content))
    cfg = dict(type='MpiiDataset', data_root='', ann_file=str(ann_file))
    with pytest.raises(ValueError, match='entry 1'):
        DATASETS.build(cfg)
    ds = DATASETS.build(dict(cfg, bad_sample_policy='skip'))
    assert len(ds) == len(content) - 1 and ds.num_skipped == 1
    assert any(str(ann_file) in m and '(15, 2)' in m for m in logs)


# ------------------------------------------------------------------- hook


def test_report_hook_logs_count(corrupt_seg, logs):
    root, _ = corrupt_seg
    ds = seg_dataset(root, bad_sample_policy='skip')
    ds._rand_another = always(1)
    ds[0]
    runner = SimpleNamespace(epoch=0, iter=3, train_dataloader=DataLoader(ds))
    hook = HOOKS.build(dict(type='BadSampleReportHook'))
    hook.before_train(runner)
    logs.clear()
    hook.after_train_epoch(runner)
    hook.after_train_epoch(runner)  # no new skip: nothing logged
    hook.after_run(runner)
    assert len(logs) == 2, logs
    assert '1 bad samples skipped so far (1 new, epoch 1)' in logs[0]
    assert '1 bad samples skipped in this run' in logs[1]
    assert logs[1].startswith(f'CheckedCityscapesDataset ({root})')


def test_report_hook_ignores_raise_policy_and_test_runs(corrupt_seg, logs):
    root, _ = corrupt_seg
    hook = HOOKS.build(dict(type='BadSampleReportHook'))
    test_hook = HOOKS.build(dict(type='BadSampleReportHook'))
    runner = SimpleNamespace(
        epoch=1, iter=1, train_dataloader=DataLoader(seg_dataset(root))
    )
    hook.before_train(runner)  # policy 'raise': nothing to report
    logs.clear()
    hook.after_run(runner)
    # A test run (no before_train) never asks for a training dataloader.
    test_hook.after_run(SimpleNamespace(epoch=0, iter=0))
    assert logs == []


def test_raise_from_dataloader_worker_keeps_the_type(corrupt_seg):
    root, bad = corrupt_seg
    loader = DataLoader(
        seg_dataset(root),
        batch_size=1,
        num_workers=1,
        collate_fn=lambda batch: batch,
        multiprocessing_context='fork',
    )
    with pytest.raises(DataError, match=f'Cannot decode image file {bad}'):
        list(loader)
