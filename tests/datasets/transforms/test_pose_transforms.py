"""Tests of the top-down pose pipeline transforms (synthetic data)."""

import copy

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.structures import InstanceData, PixelData
from mmseg.registry import TRANSFORMS

import litehrnet_seg  # noqa: F401  (registers the transforms)
from litehrnet_seg.codecs import get_warp_matrix
from litehrnet_seg.datasets.transforms import (
    GenerateHeatmapTarget,
    GetBBoxCenterScale,
    PackPoseInputs,
    RandomBBoxTransform,
    RandomHalfBody,
    TopdownAffine,
    TopdownRandomFlip,
)
from litehrnet_seg.structures import PoseDataSample

# COCO-like metainfo
FLIP_INDICES = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
UPPER = list(range(11))
LOWER = list(range(11, 17))
IMG_H, IMG_W = 240, 320
INPUT_SIZE = (192, 256)
HEATMAP_SIZE = (48, 64)


def make_results(seed: int = 0) -> dict:
    """One COCO-style person instance on a random image."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (IMG_H, IMG_W, 3), dtype=np.uint8)
    keypoints = np.stack(
        [rng.uniform(100, 200, 17), rng.uniform(40, 200, 17)], -1
    )
    visible = np.ones((1, 17), np.float32)
    visible[0, 3] = 0
    return dict(
        img=img,
        img_shape=(IMG_H, IMG_W),
        ori_shape=(IMG_H, IMG_W),
        img_path='synthetic.jpg',
        img_id=7,
        id=42,
        category_id=1,
        bbox=np.array([[90.0, 30.0, 210.0, 210.0]], np.float32),
        bbox_score=np.ones(1, np.float32),
        keypoints=keypoints[None].astype(np.float32),
        keypoints_visible=visible,
        num_keypoints=16,
        area=np.float32(120 * 180),
        iscrowd=0,
        flip_indices=FLIP_INDICES,
        dataset_name='coco',
        upper_body_ids=UPPER,
        lower_body_ids=LOWER,
        dataset_keypoint_weights=np.linspace(1, 2, 17).astype(np.float32),
    )


# ------------------------------------------------------ GetBBoxCenterScale


def test_get_bbox_center_scale():
    results = GetBBoxCenterScale(padding=1.25)(make_results())
    np.testing.assert_allclose(results['bbox_center'], [[150, 120]])
    np.testing.assert_allclose(results['bbox_scale'], [[150, 225]])
    assert results['bbox_center'].dtype == np.float32


def test_get_bbox_center_scale_keeps_existing():
    results = make_results()
    results['bbox_center'] = np.array([[10.0, 20.0]], np.float32)
    results['bbox_scale'] = np.array([[100.0, 200.0]], np.float32)
    results = GetBBoxCenterScale(padding=1.25)(results)
    np.testing.assert_allclose(results['bbox_center'], [[10, 20]])
    np.testing.assert_allclose(results['bbox_scale'], [[125, 250]])


# ------------------------------------------------------- TopdownRandomFlip


def _with_center(results):
    return GetBBoxCenterScale()(results)


def test_random_flip_once_maps_coordinates_and_swaps_sides():
    original = _with_center(make_results())
    results = TopdownRandomFlip(prob=1.0)(copy.deepcopy(original))
    assert results['flip'] is True
    assert results['flip_direction'] == 'horizontal'
    np.testing.assert_array_equal(results['img'], original['img'][:, ::-1])
    w = IMG_W
    expected = original['keypoints'][:, FLIP_INDICES].copy()
    expected[..., 0] = w - 1 - expected[..., 0]
    np.testing.assert_allclose(results['keypoints'], expected)
    np.testing.assert_array_equal(
        results['keypoints_visible'],
        original['keypoints_visible'][:, FLIP_INDICES],
    )
    np.testing.assert_allclose(
        results['bbox'], [[w - 1 - 210, 30, w - 1 - 90, 210]]
    )
    np.testing.assert_allclose(results['bbox_center'], [[w - 1 - 150, 120]])


def test_random_flip_pixel_follows_keypoint():
    results = make_results()
    results['img'][:] = 0
    x, y = 57, 33
    results['img'][y, x] = 255
    results['keypoints'][0, 0] = [x, y]
    results = TopdownRandomFlip(prob=1.0)(results)
    fy, fx = np.argwhere(results['img'][..., 0] == 255)[0]
    np.testing.assert_allclose(results['keypoints'][0, 0], [fx, fy])


def test_random_flip_twice_is_identity():
    original = _with_center(make_results())
    flip = TopdownRandomFlip(prob=1.0)
    results = flip(flip(copy.deepcopy(original)))
    for key in ('img', 'bbox', 'bbox_center', 'keypoints'):
        np.testing.assert_allclose(results[key], original[key], err_msg=key)
    np.testing.assert_array_equal(
        results['keypoints_visible'], original['keypoints_visible']
    )


def test_random_flip_prob_zero_is_noop():
    original = _with_center(make_results())
    results = TopdownRandomFlip(prob=0.0)(copy.deepcopy(original))
    assert results['flip'] is False and results['flip_direction'] is None
    np.testing.assert_array_equal(results['img'], original['img'])
    np.testing.assert_array_equal(results['keypoints'], original['keypoints'])


# ---------------------------------------------------------- RandomHalfBody


def test_random_half_body_prob_zero_is_noop():
    original = _with_center(make_results())
    results = RandomHalfBody(prob=0.0)(copy.deepcopy(original))
    np.testing.assert_array_equal(
        results['bbox_center'], original['bbox_center']
    )
    np.testing.assert_array_equal(
        results['bbox_scale'], original['bbox_scale']
    )


@pytest.mark.parametrize('seed', range(5))
def test_random_half_body_prob_one_uses_a_half(seed):
    np.random.seed(seed)
    original = _with_center(make_results(seed))
    results = RandomHalfBody(prob=1.0, padding=1.5)(copy.deepcopy(original))
    visible = original['keypoints_visible'][0] > 0
    points = original['keypoints'][0]
    candidates = []
    for ids in (UPPER, LOWER):
        sel = points[[i for i in ids if visible[i]]]
        candidates.append((sel.mean(0), (sel.max(0) - sel.min(0)) * 1.5))
    center, scale = results['bbox_center'][0], results['bbox_scale'][0]
    assert not np.allclose(center, original['bbox_center'][0])
    assert any(
        np.allclose(center, c, atol=1e-4) and np.allclose(scale, s, atol=1e-3)
        for c, s in candidates
    )


def test_random_half_body_needs_enough_keypoints_and_ids():
    original = _with_center(make_results())
    few = copy.deepcopy(original)
    few['keypoints_visible'][0, 5:] = 0  # 4 visible < 9
    results = RandomHalfBody(prob=1.0)(copy.deepcopy(few))
    np.testing.assert_array_equal(results['bbox_center'], few['bbox_center'])
    no_ids = copy.deepcopy(original)
    del no_ids['upper_body_ids'], no_ids['lower_body_ids']
    with pytest.raises(KeyError, match='upper_body_ids'):
        RandomHalfBody(prob=1.0)(no_ids)
    # explicit ids work without metainfo: only lower body allowed here
    results = RandomHalfBody(
        prob=1.0, upper_body_ids=[], lower_body_ids=LOWER
    )(copy.deepcopy(no_ids))
    sel = original['keypoints'][0, LOWER]
    np.testing.assert_allclose(results['bbox_center'][0], sel.mean(0))


# ----------------------------------------------------- RandomBBoxTransform


def test_random_bbox_transform_prob_zero_is_noop():
    original = _with_center(make_results())
    transform = RandomBBoxTransform(
        shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0
    )
    results = transform(copy.deepcopy(original))
    np.testing.assert_array_equal(
        results['bbox_center'], original['bbox_center']
    )
    np.testing.assert_array_equal(
        results['bbox_scale'], original['bbox_scale']
    )
    np.testing.assert_array_equal(results['bbox_rotation'], [0.0])


@pytest.mark.parametrize('seed', range(5))
def test_random_bbox_transform_prob_one_changes_within_bounds(seed):
    np.random.seed(seed)
    original = _with_center(make_results())
    transform = RandomBBoxTransform(
        shift_factor=0.16,
        shift_prob=1.0,
        scale_factor=(0.5, 1.5),
        scale_prob=1.0,
        rotate_factor=80.0,
        rotate_prob=1.0,
    )
    results = transform(copy.deepcopy(original))
    center0, scale0 = original['bbox_center'], original['bbox_scale']
    offset = (results['bbox_center'] - center0) / scale0
    factor = results['bbox_scale'] / scale0
    rot = results['bbox_rotation']
    assert rot.shape == (1,)
    assert np.all(offset != 0) and np.all(np.abs(offset) <= 0.16 + 1e-6)
    assert factor[0, 0] == pytest.approx(factor[0, 1])  # one factor
    assert 0.5 - 1e-6 <= factor[0, 0] <= 1.5 + 1e-6 and factor[0, 0] != 1
    assert 0 < abs(rot[0]) <= 80.0 + 1e-4
    # exact composition with the drawn parameters
    np.random.seed(seed)
    shift, resize, angle = transform._get_transform_params(1)
    np.testing.assert_allclose(
        results['bbox_center'], center0 + shift * scale0, rtol=1e-6
    )
    np.testing.assert_allclose(
        results['bbox_scale'], scale0 * resize, rtol=1e-6
    )
    np.testing.assert_allclose(rot, angle)


# ----------------------------------------------------------- TopdownAffine


def test_topdown_affine_center_keypoint_goes_to_crop_center():
    results = _with_center(make_results())
    results['keypoints'][0, 0] = results['bbox_center'][0]
    results['bbox_rotation'] = np.array([33.0], np.float32)
    results = TopdownAffine(INPUT_SIZE)(results)
    assert results['img'].shape == (256, 192, 3)
    assert results['img'].dtype == np.uint8
    assert results['input_size'] == INPUT_SIZE
    np.testing.assert_allclose(
        results['transformed_keypoints'][0, 0], [96, 128], atol=1e-3
    )
    # aspect ratio fixed to 192 / 256, never shrunk: (150, 225) -> (168.75,
    # 225)
    np.testing.assert_allclose(results['bbox_scale'], [[168.75, 225]])
    np.testing.assert_allclose(results['input_scale'], [168.75, 225])
    np.testing.assert_allclose(results['input_center'], [150, 120])
    # the original-image keypoints are kept
    assert results['keypoints'][0, 0] == pytest.approx([150, 120])


def test_topdown_affine_image_content_follows_keypoints():
    results = _with_center(make_results())
    results['img'][:] = 0
    x, y = 130, 80
    results['img'][y - 1 : y + 2, x - 1 : x + 2] = 255
    results['keypoints'][0, 0] = [x, y]
    results['bbox_rotation'] = np.array([-25.0], np.float32)
    results = TopdownAffine(INPUT_SIZE)(results)
    img = results['img'][..., 0].astype(np.float64)
    ys, xs = np.nonzero(img)
    cx = (xs * img[ys, xs]).sum() / img.sum()
    cy = (ys * img[ys, xs]).sum() / img.sum()
    np.testing.assert_allclose(
        [cx, cy], results['transformed_keypoints'][0, 0], atol=0.5
    )
    mat = get_warp_matrix(
        results['input_center'], results['input_scale'], -25.0, INPUT_SIZE
    )
    expected = mat[:, :2] @ np.array([x, y]) + mat[:, 2]
    np.testing.assert_allclose(
        results['transformed_keypoints'][0, 0], expected, atol=1e-3
    )


def test_topdown_affine_rejects_udp():
    with pytest.raises(NotImplementedError):
        TopdownAffine(INPUT_SIZE, use_udp=True)


# --------------------------------------------------- GenerateHeatmapTarget


def _encoder():
    return dict(input_size=INPUT_SIZE, heatmap_size=HEATMAP_SIZE, sigma=2)


def test_generate_heatmap_target_shapes_and_weights():
    results = TopdownAffine(INPUT_SIZE)(_with_center(make_results()))
    out = GenerateHeatmapTarget(encoder=_encoder())(copy.deepcopy(results))
    assert out['heatmaps'].shape == (17, 64, 48)
    assert out['keypoint_weights'].shape == (1, 17)
    assert out['keypoint_weights'][0, 3] == 0  # invisible
    # peaks at the crop keypoints / 4 (rounded)
    k = 0
    peak = np.unravel_index(out['heatmaps'][k].argmax(), (64, 48))
    expected = (results['transformed_keypoints'][0, k] / 4 + 0.5).astype(int)
    assert peak == (expected[1], expected[0])

    weighted = GenerateHeatmapTarget(
        encoder=dict(type='MSRAHeatmap', **_encoder()),
        use_dataset_keypoint_weights=True,
    )(copy.deepcopy(results))
    np.testing.assert_allclose(
        weighted['keypoint_weights'],
        out['keypoint_weights'] * results['dataset_keypoint_weights'],
    )
    joint = copy.deepcopy(results)
    joint['joint_weights'] = joint.pop('dataset_keypoint_weights')
    weighted2 = GenerateHeatmapTarget(
        encoder=_encoder(), use_dataset_keypoint_weights=True
    )(joint)
    np.testing.assert_allclose(
        weighted2['keypoint_weights'], weighted['keypoint_weights']
    )


# ---------------------------------------------------------- PackPoseInputs


TRAIN_PIPELINE = [
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownRandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=INPUT_SIZE),
    dict(type='GenerateHeatmapTarget', encoder=_encoder()),
    dict(type='PackPoseInputs'),
]


def test_pack_pose_inputs_fields():
    np.random.seed(0)
    original = make_results()
    results = dict(copy.deepcopy(original), head_size=12.5)
    packed = Compose([TRANSFORMS.build(t) for t in TRAIN_PIPELINE])(results)
    assert set(packed) == {'inputs', 'data_samples'}
    inputs, sample = packed['inputs'], packed['data_samples']
    assert isinstance(inputs, torch.Tensor)
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 256, 192)
    assert isinstance(sample, PoseDataSample)

    gt = sample.gt_instances
    assert isinstance(gt, InstanceData)
    for name in ('bboxes', 'bbox_scores', 'keypoints', 'keypoints_visible'):
        assert name in gt, name
    assert gt.bboxes.shape == (1, 4) and gt.keypoints.shape == (1, 17, 2)
    assert gt.keypoints_visible.shape == (1, 17)
    # original-image keypoints (up to the random flip), not crop ones
    kpts = original['keypoints']
    if sample.flip:
        kpts = kpts[:, FLIP_INDICES].copy()
        kpts[..., 0] = IMG_W - 1 - kpts[..., 0]
    np.testing.assert_allclose(gt.keypoints, kpts)

    labels = sample.gt_instance_labels
    assert isinstance(labels.keypoint_weights, torch.Tensor)
    assert labels.keypoint_weights.shape == (1, 17)
    assert isinstance(sample.gt_fields, PixelData)
    assert isinstance(sample.gt_fields.heatmaps, torch.Tensor)
    assert sample.gt_fields.heatmaps.shape == (17, 64, 48)

    meta = sample.metainfo
    for key in (
        'img_id',
        'img_path',
        'id',
        'category_id',
        'ori_shape',
        'img_shape',
        'input_size',
        'input_center',
        'input_scale',
        'flip',
        'flip_direction',
        'flip_indices',
        'head_size',
        'dataset_name',
    ):
        assert key in meta, key
    assert meta['input_size'] == INPUT_SIZE
    assert meta['flip_indices'] == FLIP_INDICES
    assert meta['head_size'] == 12.5 and meta['img_id'] == 7


def test_pack_pose_inputs_test_pipeline_without_targets():
    pipeline = Compose(
        [
            GetBBoxCenterScale(),
            TopdownAffine(INPUT_SIZE),
            PackPoseInputs(),
        ]
    )
    packed = pipeline(make_results())
    sample = packed['data_samples']
    assert 'keypoint_weights' not in sample.gt_instance_labels
    assert 'gt_fields' not in sample
    assert 'flip' not in sample.metainfo
    assert packed['inputs'].shape == (3, 256, 192)
