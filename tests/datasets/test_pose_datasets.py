"""COCO / MPII top-down pose datasets on the bundled samples and bad input.

The samples live in ``tests/data/{coco,mpii}`` (see tests/data/README.md);
anything a test writes goes to ``tmp_path``.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmseg.registry import DATASETS

import litehrnet_seg  # noqa: F401  (registers the modules under test)
from litehrnet_seg.datasets import (
    COCO_METAINFO,
    MPII_METAINFO,
    CocoDataset,
    MpiiDataset,
    parse_pose_metainfo,
)

DATA = Path(__file__).parents[1] / 'data'
COCO_DIR = DATA / 'coco'
MPII_DIR = DATA / 'mpii'
COCO_ANN = COCO_DIR / 'test_coco.json'
COCO_DET = COCO_DIR / 'test_coco_det_AP_H_56.json'
MPII_ANN = MPII_DIR / 'test_mpii.json'
# Annotations of test_coco.json without any labelled keypoint.
KEYPOINTLESS_IDS = {1202706, 508900}


def coco(**kwargs) -> CocoDataset:
    cfg = dict(
        type='CocoDataset',
        data_root=str(COCO_DIR),
        ann_file='test_coco.json',
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def mpii(**kwargs) -> MpiiDataset:
    cfg = dict(
        type='MpiiDataset',
        data_root=str(MPII_DIR),
        ann_file='test_mpii.json',
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def raw_coco() -> dict:
    return json.loads(COCO_ANN.read_text())


# ----------------------------------------------------------------- COCO


def test_coco_train_items_and_schema():
    ds = coco()
    raw = raw_coco()
    assert len(raw['annotations']) == 14
    ids = {ds[i]['id'] for i in range(len(ds))}
    # The two keypoint-less annotations are skipped.
    assert ids == {a['id'] for a in raw['annotations']} - KEYPOINTLESS_IDS
    assert len(ds) == 12

    item = ds.get_data_info(0)
    ann = next(a for a in raw['annotations'] if a['id'] == item['id'])
    img = next(i for i in raw['images'] if i['id'] == ann['image_id'])
    assert item['img_path'] == str(COCO_DIR / img['file_name'])
    assert item['img_id'] == ann['image_id']
    assert item['category_id'] == 1
    x, y, w, h = ann['bbox']
    assert item['bbox'].dtype == np.float32
    np.testing.assert_allclose(
        item['bbox'],
        [[x, y, min(x + w, img['width'] - 1), min(y + h, img['height'] - 1)]],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(item['bbox_score'], [1.0])
    kpts = np.array(ann['keypoints'], np.float32).reshape(17, 3)
    assert item['keypoints'].shape == (1, 17, 2)
    assert item['keypoints'].dtype == np.float32
    np.testing.assert_array_equal(item['keypoints'][0], kpts[:, :2])
    np.testing.assert_array_equal(
        item['keypoints_visible'][0], np.minimum(1, kpts[:, 2])
    )
    assert item['keypoints_visible'].shape == (1, 17)
    assert item['num_keypoints'] == ann['num_keypoints']
    assert item['area'] == pytest.approx(ann['area'])
    assert item['iscrowd'] == 0
    # Compared with the decoded image by LoadImageFromFileChecked.
    assert item['recorded_shape'] == (img['height'], img['width'])
    # Metainfo copied into the item for the pipeline.
    assert item['flip_indices'] == COCO_METAINFO['flip_indices']
    assert item['upper_body_ids'] == list(range(11))
    assert item['lower_body_ids'] == list(range(11, 17))
    assert item['dataset_name'] == 'coco'
    np.testing.assert_allclose(
        item['dataset_keypoint_weights'], COCO_METAINFO['joint_weights']
    )


def test_coco_bbox_clipped_to_image(tmp_path):
    raw = raw_coco()
    ann = raw['annotations'][0]
    img = next(i for i in raw['images'] if i['id'] == ann['image_id'])
    ann['bbox'] = [-10.0, -5.0, img['width'] + 50.0, img['height'] + 50.0]
    path = write_json(tmp_path / 'ann.json', raw)
    ds = coco(data_root='', ann_file=str(path))
    items = [ds.get_data_info(i) for i in range(len(ds))]
    item = next(it for it in items if it['id'] == ann['id'])
    np.testing.assert_array_equal(
        item['bbox'], [[0, 0, img['width'] - 1, img['height'] - 1]]
    )


def test_coco_metainfo_matches_the_json_category():
    category = raw_coco()['categories'][0]
    meta = coco().metainfo
    assert meta['keypoint_names'] == category['keypoints']
    assert sorted(map(sorted, meta['skeleton_links'])) == sorted(
        sorted([a - 1, b - 1]) for a, b in category['skeleton']
    )
    assert meta['num_keypoints'] == 17
    assert len(meta['sigmas']) == len(meta['joint_weights']) == 17
    names = meta['keypoint_names']
    for i, j in enumerate(meta['flip_indices']):
        # left_* <-> right_*, nose stays.
        assert names[j] == names[i].replace('left', 'X').replace(
            'right', 'left'
        ).replace('X', 'right')


def test_coco_test_mode_with_gt_boxes_matches_mmpose():
    # Like mmpose, keypoint-less / crowd instances are skipped in test mode
    # too, so evaluating on ground-truth boxes gives mmpose's numbers.
    assert len(coco(test_mode=True)) == 12


def test_coco_crowd_and_empty_box_skipped(tmp_path):
    raw = raw_coco()
    raw['annotations'][0]['iscrowd'] = 1
    raw['annotations'][1]['bbox'][2] = 0.0  # zero width
    path = write_json(tmp_path / 'ann.json', raw)
    for test_mode in (False, True):
        ds = coco(data_root='', ann_file=str(path), test_mode=test_mode)
        ids = {ds[i]['id'] for i in range(len(ds))}
        assert len(ds) == 10
        assert raw['annotations'][0]['id'] not in ids
        assert raw['annotations'][1]['id'] not in ids


def test_coco_detections():
    dets = json.loads(COCO_DET.read_text())
    ds = coco(test_mode=True, bbox_file=str(COCO_DET))
    assert len(ds) == len(dets) == 118
    for i in (0, 57, 117):
        item = ds.get_data_info(i)
        x, y, w, h = dets[i]['bbox']
        np.testing.assert_allclose(
            item['bbox'], [[x, y, x + w, y + h]], rtol=1e-6
        )
        np.testing.assert_allclose(item['bbox_score'], [dets[i]['score']])
        assert item['img_id'] == dets[i]['image_id']
        assert item['id'] == i
        assert item['keypoints'].shape == (1, 17, 2)
        assert not item['keypoints'].any()
        assert not item['keypoints_visible'].any()
        assert item['keypoints_visible'].shape == (1, 17)
        assert item['num_keypoints'] == 0


def test_coco_detections_score_threshold():
    dets = json.loads(COCO_DET.read_text())
    expected = [d for d in dets if d['score'] >= 0.5]
    ds = coco(
        test_mode=True,
        bbox_file=str(COCO_DET),
        filter_cfg=dict(bbox_score_thr=0.5),
    )
    assert len(ds) == len(expected) == 18
    scores = [float(ds[i]['bbox_score'][0]) for i in range(len(ds))]
    assert min(scores) >= 0.5


def test_coco_pipeline_loads_image():
    ds = coco(pipeline=[dict(type='LoadImageFromFile')])
    out = ds[0]
    assert out['img'].shape == (*out['ori_shape'], 3)
    assert out['keypoints'].shape == (1, 17, 2)


# ------------------------------------------------------------ COCO errors


def test_coco_missing_ann_file(tmp_path):
    missing = tmp_path / 'nope.json'
    with pytest.raises(FileNotFoundError, match='nope.json'):
        coco(data_root='', ann_file=str(missing))


def test_coco_missing_bbox_file(tmp_path):
    missing = tmp_path / 'dets.json'
    with pytest.raises(FileNotFoundError, match='dets.json'):
        coco(test_mode=True, bbox_file=str(missing))


def test_coco_missing_image_is_named_by_loader(tmp_path):
    shutil.copy(COCO_ANN, tmp_path / 'ann.json')  # images not copied
    ds = coco(
        data_root=str(tmp_path),
        ann_file='ann.json',
        pipeline=[dict(type='LoadImageFromFile')],
    )
    with pytest.raises(FileNotFoundError, match='000000000785.jpg'):
        ds[0]


def test_coco_annotation_without_keypoints(tmp_path):
    raw = raw_coco()
    bad = raw['annotations'][3]
    del bad['keypoints']
    path = write_json(tmp_path / 'instances.json', raw)
    with pytest.raises(ValueError) as err:
        coco(data_root='', ann_file=str(path))
    msg = str(err.value)
    assert 'instances.json' in msg
    assert str(bad['id']) in msg
    assert '"keypoints"' in msg


def test_coco_keypoints_of_wrong_length(tmp_path):
    raw = raw_coco()
    bad = raw['annotations'][5]
    bad['keypoints'] = bad['keypoints'][:-3]
    path = write_json(tmp_path / 'short.json', raw)
    with pytest.raises(ValueError) as err:
        coco(data_root='', ann_file=str(path))
    msg = str(err.value)
    assert 'short.json' in msg
    assert str(bad['id']) in msg
    assert '"keypoints"' in msg and '48' in msg and '51' in msg


@pytest.mark.parametrize('content', [[], 'low_scores'])
def test_coco_empty_detections(tmp_path, content):
    if content == 'low_scores':
        dets = json.loads(COCO_DET.read_text())
        content = [dict(d, score=0.01) for d in dets[:3]]
    path = write_json(tmp_path / 'empty_dets.json', content)
    with pytest.raises(ValueError, match='empty_dets.json'):
        coco(
            test_mode=True,
            bbox_file=str(path),
            filter_cfg=dict(bbox_score_thr=0.3),
        )


def test_coco_detection_of_unknown_image(tmp_path):
    dets = json.loads(COCO_DET.read_text())[:2]
    dets[1]['image_id'] = 123456789
    path = write_json(tmp_path / 'dets.json', dets)
    with pytest.raises(ValueError, match=r'dets.json.*123456789'):
        coco(test_mode=True, bbox_file=str(path))


def test_coco_bbox_file_needs_test_mode():
    with pytest.raises(ValueError, match='test_mode'):
        coco(bbox_file=str(COCO_DET))


# ------------------------------------------------------------- metainfo


def mmpose_style_info(meta: dict) -> dict:
    """The mmpose ``dataset_info`` layout of a flat metainfo."""
    names = meta['keypoint_names']
    keypoint_info = {}
    for i, name in enumerate(names):
        j = meta['flip_indices'][i]
        keypoint_info[i] = dict(
            name=name,
            id=i,
            color=[0, 0, 0],
            type='upper' if i in meta['upper_body_ids'] else 'lower',
            swap=names[j] if j != i else '',
        )
    skeleton_info = {
        k: dict(link=(names[a], names[b]), id=k, color=[0, 0, 0])
        for k, (a, b) in enumerate(meta['skeleton_links'])
    }
    return dict(
        dataset_name=meta['dataset_name'],
        keypoint_info=keypoint_info,
        skeleton_info=skeleton_info,
        joint_weights=meta['joint_weights'],
        sigmas=meta['sigmas'],
    )


@pytest.mark.parametrize('base', [COCO_METAINFO, MPII_METAINFO])
def test_mmpose_dataset_info_is_parsed(base, tmp_path):
    expected = parse_pose_metainfo(base)
    info = mmpose_style_info(base)
    parsed = parse_pose_metainfo(info)
    for key in (
        'keypoint_names',
        'flip_indices',
        'flip_pairs',
        'upper_body_ids',
        'lower_body_ids',
        'skeleton_links',
        'joint_weights',
        'sigmas',
        'num_keypoints',
    ):
        assert parsed[key] == expected[key], key
    # ... and as mmpose configs pass it: dict(from_file=...).
    path = tmp_path / 'info.py'
    path.write_text(f'dataset_info = {info!r}\n')
    ds_cls = CocoDataset if base is COCO_METAINFO else MpiiDataset
    meta = ds_cls._load_metainfo(dict(from_file=str(path)))
    assert meta['flip_indices'] == expected['flip_indices']
    assert meta['skeleton_links'] == expected['skeleton_links']


def test_bad_metainfo_is_refused():
    with pytest.raises(ValueError, match='sigmas'):
        coco(metainfo=dict(sigmas=[0.1] * 16))
    with pytest.raises(ValueError, match='flip_indices'):
        coco(metainfo=dict(flip_indices=[1] * 17))


# ----------------------------------------------------------------- MPII


def test_mpii_items_and_center_scale_by_hand():
    raw = json.loads(MPII_ANN.read_text())
    ds = mpii()
    assert len(ds) == len(raw) == 5
    item = ds.get_data_info(0)
    ann = raw[0]
    assert ann['image'] == '005808361.jpg'
    assert ann['center'] == [966.0, 340.0] and ann['scale'] == 4.718488
    # scale * 200 px; centre 15/200 * scale px lower; then 1-based -> 0.
    side = 4.718488 * 200
    cx, cy = 966.0 - 1, 340.0 + 15 * 4.718488 - 1
    np.testing.assert_allclose(item['bbox_scale'], [[side, side]], rtol=1e-6)
    np.testing.assert_allclose(item['bbox_center'], [[cx, cy]], rtol=1e-6)
    np.testing.assert_allclose(
        item['bbox'],
        [[cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        item['keypoints'][0], np.array(ann['joints']) - 1, rtol=1e-6
    )
    assert item['keypoints'].dtype == np.float32
    np.testing.assert_array_equal(item['keypoints_visible'][0], 1)
    assert item['img_id'] == 5808361
    assert item['img_path'] == str(MPII_DIR / '005808361.jpg')
    assert item['id'] == 0 and item['category_id'] == 1
    assert item['dataset_name'] == 'mpii'
    assert item['flip_indices'] == MPII_METAINFO['flip_indices']
    assert 'head_size' not in item
    # Invisible joints (ankles of entry 2) are kept, marked invisible.
    vis = ds.get_data_info(2)['keypoints_visible'][0]
    np.testing.assert_array_equal(vis, raw[2]['joints_vis'])
    assert ds.get_data_info(2)['num_keypoints'] == 14
    # Test mode keeps the ground truth (needed by PCKh).
    assert len(mpii(test_mode=True)) == 5


def test_mpii_pipeline_loads_image():
    out = mpii(pipeline=[dict(type='LoadImageFromFile')])[1]
    assert out['img'].ndim == 3


def test_mpii_headbox_file(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 500, size=(2, 2, 5))
    savemat(tmp_path / 'mpii_gt_val.mat', dict(headboxes_src=corners))
    ds = mpii(test_mode=True, headbox_file=str(tmp_path / 'mpii_gt_val.mat'))
    for i in range(5):
        diag = np.hypot(*(corners[1, :, i] - corners[0, :, i]))
        assert ds.get_data_info(i)['head_size'] == pytest.approx(0.6 * diag)
    savemat(tmp_path / 'short.mat', dict(headboxes_src=corners[..., :4]))
    with pytest.raises(ValueError, match=r'short.mat.*4 head boxes'):
        mpii(test_mode=True, headbox_file=str(tmp_path / 'short.mat'))
    savemat(tmp_path / 'other.mat', dict(something=corners))
    with pytest.raises(ValueError, match=r'other.mat.*headboxes_src'):
        mpii(test_mode=True, headbox_file=str(tmp_path / 'other.mat'))
    with pytest.raises(FileNotFoundError, match='missing.mat'):
        mpii(test_mode=True, headbox_file=str(tmp_path / 'missing.mat'))


def test_mpii_missing_ann_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        mpii(data_root='', ann_file=str(tmp_path / 'nope.json'))


def test_mpii_missing_image_is_named_by_loader(tmp_path):
    shutil.copy(MPII_ANN, tmp_path / 'ann.json')
    ds = mpii(
        data_root=str(tmp_path),
        ann_file='ann.json',
        pipeline=[dict(type='LoadImageFromFile')],
    )
    with pytest.raises(FileNotFoundError, match='005808361.jpg'):
        ds[0]


@pytest.mark.parametrize(
    'field, value, pattern',
    [
        ('joints', [[1.0, 2.0]] * 15, r'"joints".*\(15, 2\).*\(16, 2\)'),
        ('joints_vis', [1] * 17, r'"joints_vis".*\(17,\)'),
        ('center', [1.0], r'"center"'),
        ('joints', None, r'no "joints" field'),
    ],
)
def test_mpii_bad_entry(tmp_path, field, value, pattern):
    raw = json.loads(MPII_ANN.read_text())
    if value is None:
        del raw[3][field]
    else:
        raw[3][field] = value
    path = write_json(tmp_path / 'bad_mpii.json', raw)
    with pytest.raises(ValueError) as err:
        mpii(data_root='', ann_file=str(path))
    msg = str(err.value)
    assert 'bad_mpii.json' in msg and 'entry 3' in msg
    assert raw[3]['image'] in msg
    assert re.search(pattern, msg), msg
