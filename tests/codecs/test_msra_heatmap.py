"""Tests of the MSRA heatmap codec and pose geometry helpers."""

import math

import cv2
import numpy as np
import pytest
import torch

from litehrnet_seg.codecs import (
    MSRAHeatmap,
    affine_points,
    bbox_xyxy2cs,
    fix_aspect_ratio,
    flip_heatmaps,
    generate_gaussian_heatmaps,
    get_heatmap_maximum,
    get_warp_matrix,
    refine_keypoints,
    refine_keypoints_dark,
)

INPUT_SIZE = (192, 256)
HEATMAP_SIZE = (48, 64)


def _to3x3(matrix):
    return np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])


def _three_point_warp(center, scale, rot, out, shift=(0.0, 0.0)):
    """Reference: the box-to-output map from three point pairs."""
    rad = math.radians(rot)
    rot_mat = np.array(
        [[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]]
    )
    src_c = np.asarray(center) + np.asarray(scale) * np.asarray(shift)
    dst_c = np.array(out, np.float64) / 2
    src_up = src_c + rot_mat @ np.array([0.0, -scale[0] / 2])
    dst_up = dst_c + np.array([0.0, -out[0] / 2])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.float32([src_c, src_up, third(src_c, src_up)])
    dst = np.float32([dst_c, dst_up, third(dst_c, dst_up)])
    return cv2.getAffineTransform(src, dst)


# --------------------------------------------------------------- geometry


def test_bbox_xyxy2cs():
    bbox = np.array([[10, 20, 110, 220]], np.float32)
    center, scale = bbox_xyxy2cs(bbox, padding=1.25)
    np.testing.assert_allclose(center, [[60, 120]])
    np.testing.assert_allclose(scale, [[125, 250]])
    assert center.shape == (1, 2) and scale.shape == (1, 2)
    c1, s1 = bbox_xyxy2cs(bbox[0])
    assert c1.shape == (2,) and s1.shape == (2,)
    np.testing.assert_allclose(s1, [100, 200])


def test_fix_aspect_ratio_only_enlarges():
    scale = np.array([[300.0, 100.0], [30.0, 200.0]])
    fixed = fix_aspect_ratio(scale, 0.75)
    np.testing.assert_allclose(fixed, [[300, 400], [150, 200]])
    np.testing.assert_allclose(fixed[:, 0] / fixed[:, 1], 0.75)
    assert np.all(fixed >= scale)


@pytest.mark.parametrize('rot', [0.0, 30.0, -75.0, 180.0])
@pytest.mark.parametrize('shift', [(0.0, 0.0), (0.1, -0.2)])
def test_get_warp_matrix_matches_three_point_construction(rot, shift):
    center = np.array([123.4, 87.6])
    scale = np.array([150.0, 200.0])
    mat = get_warp_matrix(center, scale, rot, INPUT_SIZE, shift)
    assert mat.shape == (2, 3) and mat.dtype == np.float32
    ref = _three_point_warp(center, scale, rot, INPUT_SIZE, shift)
    np.testing.assert_allclose(mat, ref, rtol=1e-4, atol=1e-3)


def test_get_warp_matrix_center_size_and_rotation_direction():
    center = np.array([300.0, 200.0])
    scale = np.array([96.0, 128.0])
    mat = get_warp_matrix(center, scale, 0.0, INPUT_SIZE)
    np.testing.assert_allclose(
        affine_points(center[None], mat), [[96, 128]], atol=1e-4
    )
    # box corners go to the output corners
    corners = center + np.array([[-48.0, -64.0], [48.0, 64.0]])
    np.testing.assert_allclose(
        affine_points(corners, mat), [[0, 0], [192, 256]], atol=1e-3
    )
    # +90 deg: the point right of the center lands on the top middle
    # (content turns counter-clockwise on screen, as in mmpose)
    mat90 = get_warp_matrix(center, scale, 90.0, INPUT_SIZE)
    right = center + np.array([[48.0, 0.0]])
    np.testing.assert_allclose(
        affine_points(right, mat90), [[96, 128 - 96]], atol=1e-3
    )


def test_get_warp_matrix_inverse_and_affine_points_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        center = rng.uniform(0, 500, 2)
        scale = rng.uniform(30, 400, 2)
        rot = rng.uniform(-180, 180)
        shift = rng.uniform(-0.2, 0.2, 2)
        fwd = get_warp_matrix(center, scale, rot, INPUT_SIZE, shift)
        inv = get_warp_matrix(center, scale, rot, INPUT_SIZE, shift, inv=True)
        np.testing.assert_allclose(
            _to3x3(inv) @ _to3x3(fwd), np.eye(3), atol=1e-4
        )
        points = rng.uniform(-50, 600, (3, 5, 2)).astype(np.float32)
        moved = affine_points(points, fwd)
        assert moved.shape == points.shape and moved.dtype == np.float32
        np.testing.assert_allclose(
            affine_points(moved, inv), points, atol=2e-2
        )


def test_affine_points_matches_cv2_transform():
    mat = get_warp_matrix(
        np.array([50.0, 60.0]), np.array([80.0, 90.0]), 20.0, (64, 64)
    )
    points = np.random.default_rng(1).uniform(0, 100, (1, 17, 2))
    points = points.astype(np.float32)
    np.testing.assert_allclose(
        affine_points(points, mat), cv2.transform(points, mat), atol=1e-3
    )


# ---------------------------------------------------------------- encoding


def test_gaussian_heatmap_peak_window_and_weights():
    keypoints = np.array([[[10.0, 20.0], [10.4, 20.6], [5.0, 5.0]]])
    visible = np.array([[1.0, 1.0, 0.0]])
    heatmaps, weights = generate_gaussian_heatmaps(
        (48, 64), keypoints, visible, sigma=2
    )
    assert heatmaps.shape == (3, 64, 48) and heatmaps.dtype == np.float32
    assert weights.shape == (1, 3) and weights.dtype == np.float32
    np.testing.assert_array_equal(weights, [[1, 1, 0]])
    assert heatmaps[0, 20, 10] == pytest.approx(1.0)
    # 3-sigma window around the rounded center, 13 x 13 pixels
    assert np.count_nonzero(heatmaps[0]) == 13 * 13
    ys, xs = np.nonzero(heatmaps[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (4, 16, 14, 26)
    assert heatmaps[0, 20, 11] == pytest.approx(math.exp(-1 / 8))
    # sub-pixel keypoint -> rounded center (10, 21)
    assert np.unravel_index(heatmaps[1].argmax(), (64, 48)) == (21, 10)
    # invisible keypoint: nothing drawn
    assert not heatmaps[2].any()


def test_gaussian_heatmap_outside_and_partial_and_max_merge():
    keypoints = np.array(
        [
            [[-10.0, 5.0], [-2.0, 5.0], [10.0, 10.0]],
            [[60.0, 5.0], [3.0, 80.0], [12.0, 10.0]],
        ]
    )
    visible = np.ones((2, 3))
    heatmaps, weights = generate_gaussian_heatmaps(
        (48, 64), keypoints, visible, sigma=2
    )
    # fully outside -> weight 0; partly inside -> weight 1, clipped window
    np.testing.assert_array_equal(weights, [[0, 1, 1], [0, 0, 1]])
    # x = -2 -> center int(-1.5) = -1 (truncation, as mmpose), so the
    # window covers columns 0..5
    assert heatmaps[1][:, :6].any() and heatmaps[1][:, 6:].sum() == 0
    assert heatmaps[1, 5, 0] == pytest.approx(math.exp(-1 / 8))
    # two instances on the same channel merge by maximum, not sum
    assert heatmaps[2].max() == pytest.approx(1.0)
    assert heatmaps[2, 10, 10] == pytest.approx(1.0)
    assert heatmaps[2, 10, 12] == pytest.approx(1.0)
    assert heatmaps[2, 10, 11] == pytest.approx(math.exp(-1 / 8))


def test_get_heatmap_maximum_3d_4d_and_empty():
    heatmaps = np.zeros((2, 3, 8, 6), np.float32)
    heatmaps[0, 0, 5, 2] = 0.9
    heatmaps[1, 2, 1, 4] = 0.4
    heatmaps[0, 1] = -1.0  # non-positive maximum
    locs, vals = get_heatmap_maximum(heatmaps)
    assert locs.shape == (2, 3, 2) and vals.shape == (2, 3)
    assert locs.dtype == np.float32
    np.testing.assert_array_equal(locs[0, 0], [2, 5])
    np.testing.assert_array_equal(locs[1, 2], [4, 1])
    np.testing.assert_array_equal(locs[0, 1], [-1, -1])
    np.testing.assert_array_equal(locs[0, 2], [-1, -1])  # all zero
    np.testing.assert_allclose(vals[:, 0], [0.9, 0.0])
    locs3, vals3 = get_heatmap_maximum(heatmaps[0])
    assert locs3.shape == (3, 2) and vals3.shape == (3,)
    np.testing.assert_array_equal(locs3, locs[0])


def test_refine_keypoints_quarter_shift():
    heatmaps = np.zeros((2, 10, 10), np.float32)
    heatmaps[0, 5, 5] = 1.0
    heatmaps[0, 5, 6] = 0.5  # right neighbour higher
    heatmaps[0, 4, 5] = 0.4  # upper neighbour higher
    heatmaps[1, 0, 0] = 1.0  # border: not refined
    heatmaps[1, 0, 1] = 0.5
    keypoints = np.array([[[5.0, 5.0], [0.0, 0.0]]], np.float32)
    refined = refine_keypoints(keypoints, heatmaps)
    np.testing.assert_allclose(refined, [[[5.25, 4.75], [0.0, 0.0]]])
    np.testing.assert_array_equal(keypoints, [[[5, 5], [0, 0]]])  # copy


# ------------------------------------------------------------ round trips


def test_msra_encode_decode_integer_keypoints_exact():
    codec = MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=2)
    keypoints = np.array([[[40.0, 60.0], [100.0, 200.0], [152.0, 32.0]]])
    encoded = codec.encode(keypoints, np.ones((1, 3)))
    assert set(encoded) == {'heatmaps', 'keypoint_weights'}
    assert encoded['heatmaps'].shape == (3, 64, 48)
    assert encoded['keypoint_weights'].shape == (1, 3)
    decoded, scores = codec.decode(encoded['heatmaps'])
    assert decoded.shape == (1, 3, 2) and scores.shape == (1, 3)
    np.testing.assert_allclose(decoded, keypoints, atol=1e-5)
    np.testing.assert_allclose(scores, 1.0)


def test_msra_encode_decode_subpixel_within_half_heatmap_pixel():
    codec = MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=2)
    rng = np.random.default_rng(0)
    keypoints = rng.uniform([20, 20], [172, 236], (1, 17, 2))
    heatmaps = codec.encode(keypoints)['heatmaps']
    decoded, _ = codec.decode(heatmaps)
    err = np.abs(decoded - keypoints) / codec.scale_factor  # heatmap px
    assert err.max() <= 0.5 + 1e-4


def test_msra_invisible_keypoint_weight_zero():
    codec = MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=2)
    keypoints = np.array([[[40.0, 60.0], [100.0, 200.0], [500.0, 60.0]]])
    encoded = codec.encode(keypoints, np.array([[1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(encoded['keypoint_weights'], [[1, 0, 0]])
    assert not encoded['heatmaps'][1].any()
    assert not encoded['heatmaps'][2].any()
    with pytest.raises(AssertionError):
        codec.encode(np.zeros((2, 3, 2)))  # single instance only


def test_dark_beats_quarter_shift_on_subpixel_gaussians():
    biased = MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=2)
    dark = MSRAHeatmap(
        INPUT_SIZE, HEATMAP_SIZE, sigma=2, unbiased=True, blur_kernel_size=11
    )
    rng = np.random.default_rng(1)
    keypoints = rng.uniform([24, 24], [168, 232], (1, 17, 2))
    heatmaps = dark.encode(keypoints)['heatmaps']  # exact sub-pixel peaks
    original = heatmaps.copy()
    dark_kpts, _ = dark.decode(heatmaps)
    quarter_kpts, _ = biased.decode(heatmaps)
    np.testing.assert_array_equal(heatmaps, original)  # not modified
    dark_err = np.abs(dark_kpts - keypoints) / dark.scale_factor
    quarter_err = np.abs(quarter_kpts - keypoints) / dark.scale_factor
    assert dark_err.max() < 0.05
    assert quarter_err.max() <= 0.5 + 1e-4
    assert dark_err.mean() < 0.25 * quarter_err.mean()


def test_refine_keypoints_dark_recovers_offset_and_skips_border():
    sigma = 2.0
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    heatmaps = np.stack(
        [
            np.exp(-((xs - 15.3) ** 2 + (ys - 9.8) ** 2) / (2 * sigma**2)),
            np.exp(-((xs - 0.6) ** 2 + (ys - 20.0) ** 2) / (2 * sigma**2)),
        ]
    ).astype(np.float32)
    locs, _ = get_heatmap_maximum(heatmaps)
    refined = refine_keypoints_dark(locs[None], heatmaps, 11)
    np.testing.assert_allclose(refined[0, 0], [15.3, 9.8], atol=0.02)
    np.testing.assert_array_equal(refined[0, 1], locs[1])  # border


# ------------------------------------------------------------ flip (TTA)


def test_flip_heatmaps_symmetric_input_gives_mirror_symmetric_output():
    # channels 0 <-> 1 are a left/right pair, channel 2 is central
    flip_indices = [1, 0, 2]
    rng = np.random.default_rng(0)
    left = torch.from_numpy(rng.random((2, 6, 9)).astype(np.float32))
    center = torch.from_numpy(rng.random((2, 6, 5)).astype(np.float32))
    center = torch.cat([center, center[..., :-1].flip(-1)], -1)  # w = 9
    heatmaps = torch.stack([left, left.flip(-1), center], dim=1)
    assert heatmaps.shape == (2, 3, 6, 9)
    before = heatmaps.clone()

    out = flip_heatmaps(heatmaps, flip_indices, shift_heatmap=False)
    torch.testing.assert_close(out, heatmaps)  # symmetric -> invariant
    torch.testing.assert_close(heatmaps, before)  # input untouched

    shifted = flip_heatmaps(heatmaps, flip_indices, shift_heatmap=True)
    torch.testing.assert_close(shifted[..., 1:], heatmaps[..., :-1])
    torch.testing.assert_close(shifted[..., 0], heatmaps[..., 0])


def test_flip_heatmaps_swaps_channels_and_flips_width():
    heatmaps = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32)
    heatmaps = heatmaps.reshape(2, 3, 2, 4)
    out = flip_heatmaps(heatmaps, [2, 1, 0], shift_heatmap=False)
    for k, src in enumerate([2, 1, 0]):
        torch.testing.assert_close(out[:, k], heatmaps[:, src].flip(-1))
    with pytest.raises(AssertionError):
        flip_heatmaps(heatmaps, [1, 0])


def test_flip_heatmaps_shift_aligns_flip_test_predictions():
    """Heatmaps of the flipped crop (``x -> w - 1 - x``), flipped back with
    the shift, decode like the heatmaps of the unflipped crop; without the
    shift they are one heatmap pixel off."""
    codec = MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=2)
    keypoints = np.array(
        [[[100.0, 60.0], [40.0, 200.0], [150.0, 120.0], [93.0, 20.0]]]
    )
    flip_indices = [1, 0, 2, 3]
    flipped = keypoints[:, flip_indices].copy()
    flipped[..., 0] = INPUT_SIZE[0] - 1 - flipped[..., 0]
    flipped_heatmaps = torch.from_numpy(codec.encode(flipped)['heatmaps'])
    direct, _ = codec.decode(codec.encode(keypoints)['heatmaps'])

    back = flip_heatmaps(flipped_heatmaps[None], flip_indices, True)[0]
    decoded, _ = codec.decode(back.numpy())
    np.testing.assert_allclose(decoded, direct)
    np.testing.assert_allclose(decoded, keypoints, atol=2.0)

    unshifted = flip_heatmaps(flipped_heatmaps[None], flip_indices, False)
    decoded_unshifted, _ = codec.decode(unshifted[0].numpy())
    np.testing.assert_allclose(
        decoded_unshifted[..., 0], direct[..., 0] - codec.scale_factor[0]
    )
