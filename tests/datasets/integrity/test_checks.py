"""Bad Cityscapes data must fail with errors that name the offending file.

Each test builds a tiny Cityscapes-layout folder in ``tmp_path``::

    leftImg8bit/train/<city>/<frame>_leftImg8bit.png
    gtFine/train/<city>/<frame>_gtFine_labelTrainIds.png
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS, TRANSFORMS

import litehrnet_seg  # noqa: F401  (registers the modules under test)
from litehrnet_seg.datasets import DataError

H, W = 32, 64
FRAMES = ('aachen_000000_000019', 'bremen_000001_000019')
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
]
CHECKED_PIPELINE = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='CheckSegSample'),
]


def img_path(root: Path, frame: str) -> Path:
    city = frame.split('_')[0]
    return root / 'leftImg8bit' / 'train' / city / f'{frame}_leftImg8bit.png'


def label_path(root: Path, frame: str) -> Path:
    city = frame.split('_')[0]
    name = f'{frame}_gtFine_labelTrainIds.png'
    return root / 'gtFine' / 'train' / city / name


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def valid_label(seed: int = 0) -> np.ndarray:
    """Random train ids 0..18, with some ignored (255) pixels."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 19, size=(H, W), dtype=np.uint8)
    label[:4] = 255
    return label


def make_cityscapes(root: Path, frames=FRAMES) -> dict:
    """Write a valid tiny Cityscapes folder; return the labels by frame."""
    rng = np.random.default_rng(0)
    labels = {}
    for i, frame in enumerate(frames):
        image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        write_png(img_path(root, frame), image)
        labels[frame] = valid_label(seed=i)
        write_png(label_path(root, frame), labels[frame])
    return labels


def build_dataset(root: Path, pipeline=PIPELINE, **kwargs):
    cfg = dict(
        type='CheckedCityscapesDataset',
        data_root=str(root),
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'
        ),
        pipeline=pipeline,
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


# --------------------------------------------------------------- positive


@pytest.mark.parametrize('pipeline', [PIPELINE, CHECKED_PIPELINE])
def test_valid_folder_loads_and_passes_checks(tmp_path, pipeline):
    labels = make_cityscapes(tmp_path)
    ds = build_dataset(tmp_path, pipeline=pipeline)

    assert len(ds) == len(FRAMES)
    assert ds.metainfo['classes'][0] == 'road'
    for idx, frame in enumerate(sorted(FRAMES)):
        results = ds[idx]
        assert results['img_path'] == str(img_path(tmp_path, frame))
        assert results['seg_map_path'] == str(label_path(tmp_path, frame))
        assert results['img'].shape == (H, W, 3)
        assert results['img_shape'] == (H, W)
        assert results['gt_seg_map'].dtype == np.uint8
        np.testing.assert_array_equal(results['gt_seg_map'], labels[frame])
        assert results['reduce_zero_label'] is False


def test_valid_sample_packs_for_training(tmp_path):
    labels = make_cityscapes(tmp_path)
    ds = build_dataset(
        tmp_path, pipeline=PIPELINE + [dict(type='PackSegInputs')]
    )
    packed = ds[0]
    assert packed['inputs'].shape == (3, H, W)
    gt = packed['data_samples'].gt_sem_seg.data
    expected = torch.from_numpy(labels[sorted(FRAMES)[0]].astype(np.int64))
    assert torch.equal(gt[0], expected)


# ------------------------------------------------------ dataset structure


def test_missing_label_names_image_and_expected_label(tmp_path):
    make_cityscapes(tmp_path)
    frame = FRAMES[1]
    label_path(tmp_path, frame).unlink()

    with pytest.raises(DataError) as exc:
        build_dataset(tmp_path)
    msg = str(exc.value)
    assert str(img_path(tmp_path, frame)) in msg
    assert str(label_path(tmp_path, frame)) in msg
    assert str(img_path(tmp_path, FRAMES[0])) not in msg
    assert '1 of 2' in msg
    assert 'tools/dataset_converters/cityscapes.py data/cityscapes' in msg


def test_missing_label_folder_is_reported(tmp_path):
    make_cityscapes(tmp_path)
    for frame in FRAMES:
        label_path(tmp_path, frame).unlink()
        label_path(tmp_path, frame).parent.rmdir()
    (tmp_path / 'gtFine' / 'train').rmdir()

    with pytest.raises(DataError) as exc:
        build_dataset(tmp_path)
    msg = str(exc.value)
    assert '2 of 2' in msg
    assert str(tmp_path / 'gtFine' / 'train') in msg
    assert 'does not exist' in msg


def test_missing_data_root_names_it(tmp_path):
    root = tmp_path / 'no_such_cityscapes'
    with pytest.raises(FileNotFoundError) as exc:
        build_dataset(root)
    msg = str(exc.value)
    assert str(root) in msg
    assert 'leftImg8bit/train' in msg
    assert '_leftImg8bit.png' in msg


def test_empty_data_folder_names_it(tmp_path):
    # Folders exist, but hold no *_leftImg8bit.png (e.g. not unzipped yet).
    img_dir = tmp_path / 'leftImg8bit' / 'train' / 'aachen'
    img_dir.mkdir(parents=True)
    (img_dir / 'README.txt').write_text('unzip here')
    (tmp_path / 'gtFine' / 'train').mkdir(parents=True)

    for serialize_data in (True, False):
        with pytest.raises(FileNotFoundError) as exc:
            build_dataset(tmp_path, serialize_data=serialize_data)
        msg = str(exc.value)
        assert str(tmp_path / 'leftImg8bit' / 'train') in msg
        assert f'data_root={str(tmp_path)!r}' in msg
        assert '*_leftImg8bit.png' in msg


def test_ann_file_listing_missing_image(tmp_path):
    make_cityscapes(tmp_path)
    ann = tmp_path / 'train.txt'
    ann.write_text(
        'aachen/aachen_000000_000019\naachen/aachen_000099_000019\n'
    )

    with pytest.raises(DataError) as exc:
        build_dataset(tmp_path, ann_file='train.txt')
    msg = str(exc.value)
    assert str(img_path(tmp_path, 'aachen_000099_000019')) in msg
    assert str(ann) in msg


def test_lazy_init_checks_on_full_init(tmp_path):
    make_cityscapes(tmp_path)
    label_path(tmp_path, FRAMES[0]).unlink()
    ds = build_dataset(tmp_path, lazy_init=True)  # nothing listed yet
    with pytest.raises(DataError, match=FRAMES[0]):
        ds.full_init()


# -------------------------------------------------------- unreadable files


@pytest.mark.parametrize('content', [b'this is not a png', b''])
@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_corrupt_image_checked_loader_names_file(tmp_path, content, backend):
    make_cityscapes(tmp_path)
    bad = img_path(tmp_path, FRAMES[0])
    bad.write_bytes(content)
    pipeline = [
        dict(type='LoadImageFromFileChecked', imdecode_backend=backend)
    ] + CHECKED_PIPELINE[1:]
    ds = build_dataset(tmp_path, pipeline=pipeline)

    with pytest.raises(DataError) as exc:
        ds[0]
    assert exc.value.kind == 'unreadable_image' and exc.value.path == str(bad)
    assert f'Cannot decode image file {bad}' in str(exc.value)


def test_truncated_label_checked_loader_names_file(tmp_path):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    bad.write_bytes(bad.read_bytes()[:40])
    ds = build_dataset(tmp_path, pipeline=CHECKED_PIPELINE)

    with pytest.raises(DataError) as exc:
        ds[0]
    assert exc.value.kind == 'unreadable_label'
    assert f'Cannot decode label file {bad}' in str(exc.value)


@pytest.mark.parametrize('content', [b'this is not a png', b''])
@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_corrupt_label_checked_loader_names_file(tmp_path, content, backend):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    bad.write_bytes(content)
    pipeline = [
        CHECKED_PIPELINE[0],
        dict(type='LoadAnnotationsChecked', imdecode_backend=backend),
        CHECKED_PIPELINE[2],
    ]
    ds = build_dataset(tmp_path, pipeline=pipeline)

    with pytest.raises(DataError) as exc:
        ds[0]
    assert f'Cannot decode label file {bad}' in str(exc.value)


def test_file_deleted_after_build_is_named(tmp_path):
    make_cityscapes(tmp_path)
    ds = build_dataset(tmp_path, pipeline=CHECKED_PIPELINE)
    missing = label_path(tmp_path, FRAMES[0])
    missing.unlink()
    with pytest.raises(DataError) as exc:
        ds[0]
    assert exc.value.kind == 'missing_label'
    assert f'label file {missing} does not exist' in str(exc.value)


# ------------------------------------------------------ bad label content


@pytest.mark.parametrize('value', [19, 200, 254])
def test_invalid_label_value_names_label_and_value(tmp_path, value):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    label = valid_label()
    label[10, 10:13] = value
    write_png(bad, label)
    ds = build_dataset(tmp_path)

    with pytest.raises(DataError) as exc:
        ds[0]
    assert exc.value.kind == 'invalid_label_id'
    msg = str(exc.value)
    assert f'label {bad} (image' in msg
    assert (
        f'holds invalid values {value} (3 px); valid are train ids 0..18 '
        'and the ignore index 255'
    ) in msg
    assert '0..18' in msg
    ds[1]  # the other, valid sample still loads


def test_raw_label_ids_list_at_most_ten_values(tmp_path):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    # Raw Cityscapes label ids (0..33) instead of train ids.
    raw = np.arange(H * W, dtype=np.int64).reshape(H, W) % 34
    write_png(bad, raw.astype(np.uint8))
    ds = build_dataset(tmp_path)

    with pytest.raises(DataError) as exc:
        ds[0]
    msg = str(exc.value)
    assert str(bad) in msg
    assert '19 (' in msg and '28 (' in msg
    assert '29 (' not in msg  # listing stops after ten values
    assert '15 values in all' in msg
    assert '_gtFine_labelTrainIds.png' in msg


def test_image_label_size_mismatch_names_both(tmp_path):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    write_png(bad, valid_label()[:, : W // 2])
    ds = build_dataset(tmp_path)

    with pytest.raises(DataError) as exc:
        ds[0]
    assert exc.value.kind == 'size_mismatch'
    msg = str(exc.value)
    assert f'label {bad} is {H}x{W // 2} but image' in msg
    assert f'{img_path(tmp_path, FRAMES[0])} is {H}x{W} (HxW)' in msg


def test_colour_label_is_rejected(tmp_path):
    make_cityscapes(tmp_path)
    bad = label_path(tmp_path, FRAMES[0])
    write_png(bad, np.zeros((H, W, 3), np.uint8))
    ds = build_dataset(tmp_path)

    with pytest.raises(DataError, match='single-channel') as exc:
        ds[0]
    assert exc.value.kind == 'bad_label_format'
    assert str(bad) in str(exc.value)


# ------------------------------------------------- CheckSegSample directly


def test_check_seg_sample_custom_classes_and_dtypes():
    check = TRANSFORMS.build(
        dict(type='CheckSegSample', num_classes=3, ignore_index=-1)
    )
    img = np.zeros((2, 2, 3), np.uint8)
    ok = dict(img=img, gt_seg_map=np.array([[0, 1], [2, -1]]))
    assert check(ok) is ok

    bad = dict(
        img=img,
        gt_seg_map=np.array([[0, 3], [-2, -1]], np.int64),
        seg_map_path='x.png',
    )
    with pytest.raises(DataError, match=r'x\.png.*-2 \(1 px\), 3 \(1 px\)'):
        check(bad)


def test_check_seg_sample_needs_a_label():
    check = TRANSFORMS.build(dict(type='CheckSegSample'))
    with pytest.raises(KeyError, match='LoadAnnotations'):
        check(dict(img=np.zeros((2, 2, 3), np.uint8), img_path='a.png'))


@pytest.mark.parametrize(
    'reduce_zero_label, label_map', [(False, None), (True, {3: 7, 0: 1})]
)
def test_checked_annotations_equal_mmseg(
    tmp_path, reduce_zero_label, label_map
):
    label = np.arange(H * W, dtype=np.uint8).reshape(H, W) % 6
    label[0, :5] = 255
    write_png(tmp_path / 'l.png', label)
    results = {}
    for kind in ('LoadAnnotations', 'LoadAnnotationsChecked'):
        load = TRANSFORMS.build(dict(type=kind))
        results[kind] = load(
            dict(
                seg_map_path=str(tmp_path / 'l.png'),
                reduce_zero_label=reduce_zero_label,
                label_map=label_map,
                seg_fields=[],
            )
        )
    ours, theirs = (
        results['LoadAnnotationsChecked'],
        results['LoadAnnotations'],
    )
    np.testing.assert_array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])
    assert ours['gt_seg_map'].dtype == np.uint8
    assert ours['seg_fields'] == ['gt_seg_map']


def test_checked_image_loader_refuses_ignore_empty():
    with pytest.raises(ValueError, match="bad_sample_policy='skip'"):
        TRANSFORMS.build(
            dict(type='LoadImageFromFileChecked', ignore_empty=True)
        )
