"""Our pose codec and geometry helpers against mmpose 1.3.2 itself.

The pose code is ours (mmpose's runtime needs xtcocotools, whose cp311
wheel does not import with numpy 2), written to follow mmpose. These tests
use mmpose as an oracle on the same random inputs, wherever the needed
mmpose modules import without their heavy dependencies. ``.ci/run``
installs ``mmpose==1.3.2`` and ``munkres`` (imported by ``mmpose.codecs``)
with ``--no-deps``, for tests only.

Known, deliberate differences (each checked below, not tolerated away):

* fractional ``3 * sigma``: mmpose truncates ``mu - radius`` toward zero,
  which shifts its Gaussian one pixel (and can keep the weight of a
  keypoint whose window is fully off the map) near the top/left border;
  ours stays centred on the keypoint. Integer ``3 * sigma`` (sigma 2 and 3,
  all our configs) matches exactly.
* DARK: mmpose takes the Newton step in float32, ours in float64.
* ``get_warp_matrix``: mmpose solves from float32 control points, ours is
  the closed form in float64; both end as float32-level matrices.
"""

import numpy as np
import pytest
import torch

mmpose_codecs = pytest.importorskip(
    'mmpose.codecs',
    reason='mmpose (the test oracle) not importable: .ci/run installs '
    'mmpose==1.3.2 and munkres with --no-deps',
)
from mmpose.codecs import utils as mm_utils  # noqa: E402
from mmpose.structures import bbox as mm_bbox  # noqa: E402
from mmpose.structures import keypoint as mm_keypoint  # noqa: E402

from litehrnet_seg import codecs  # noqa: E402
from litehrnet_seg.datasets.transforms import (  # noqa: E402
    TopdownRandomFlip,
)

INPUT, HEATMAP = (192, 256), (48, 64)  # (w, h), the 256x192 configs
K = 17


def _keypoints(rng, low=-40.0, high=260.0, n=1):
    """Keypoints in input pixels, many outside, and mixed visibility."""
    kp = rng.uniform(low, high, (n, K, 2)).astype(np.float32)
    kp[..., 0] *= INPUT[0] / INPUT[1]
    vis = rng.choice([0.0, 0.3, 0.5, 0.7, 1.0], (n, K)).astype(np.float32)
    kp[0, 0] = (-8.1, 30.0)  # just outside: window partly on the map
    kp[0, 1] = (-60.0, 30.0)  # window fully outside: weight 0
    kp[0, 2] = (INPUT[0] + 3.9, 100.0)
    vis[0, :3] = 1.0
    return kp, vis


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize('unbiased', [False, True], ids=['msra', 'dark'])
@pytest.mark.parametrize('sigma', [2, 3])
def test_encode_matches_mmpose(sigma, unbiased):
    rng = np.random.default_rng(sigma + 10 * unbiased)
    ours = codecs.MSRAHeatmap(INPUT, HEATMAP, sigma, unbiased=unbiased)
    theirs = mmpose_codecs.MSRAHeatmap(INPUT, HEATMAP, sigma, unbiased)
    zero_weights = 0
    for _ in range(20):
        kp, vis = _keypoints(rng)
        a, b = ours.encode(kp, vis), theirs.encode(kp, vis)
        assert a['heatmaps'].dtype == b['heatmaps'].dtype == np.float32
        np.testing.assert_array_equal(a['heatmaps'], b['heatmaps'])
        np.testing.assert_array_equal(
            a['keypoint_weights'], b['keypoint_weights']
        )
        zero_weights += int((a['keypoint_weights'][vis >= 0.5] == 0).sum())
    assert zero_weights > 0  # the off-map rule was exercised


@pytest.mark.parametrize('sigma', [1.5, 2.5])
def test_fractional_sigma_matches_away_from_top_left(sigma):
    """With a fractional radius, mmpose and ours agree wherever the window
    does not reach past the top/left border."""
    rng = np.random.default_rng(3)
    radius = 3 * sigma
    scale = np.array(INPUT) / np.array(HEATMAP)
    kp = rng.uniform(radius + 1, 60, (50, 1, K, 2)) * scale
    vis = np.ones((1, K), np.float32)
    for sample in kp.astype(np.float32):
        a, wa = codecs.generate_gaussian_heatmaps(
            HEATMAP, sample / scale.astype(np.float32), vis, sigma
        )
        b, wb = mm_utils.generate_gaussian_heatmaps(
            HEATMAP, sample / scale.astype(np.float32), vis.copy(), sigma
        )
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(wa, wb)


def test_fractional_sigma_near_the_border_ours_is_centred():
    """Where they differ, ours is right: its peak is on the keypoint."""
    sigma, vis = 1.5, np.ones((1, 1), np.float32)
    kp = np.array([[[3.0, 20.0]]], np.float32)  # mu - 4.5 < 0
    ours, _ = codecs.generate_gaussian_heatmaps((48, 64), kp, vis, sigma)
    theirs, _ = mm_utils.generate_gaussian_heatmaps(
        (48, 64), kp, vis.copy(), sigma
    )
    assert np.unravel_index(ours[0].argmax(), ours[0].shape) == (20, 3)
    # mmpose 1.3.2: int(3 - 4.5) == -1 instead of -2 shifts its Gaussian.
    assert np.unravel_index(theirs[0].argmax(), theirs[0].shape) == (20, 4)
    # A window fully off the map: weight 0 for us, 1 (and an empty
    # heatmap, i.e. a visible keypoint trained towards zero) for mmpose.
    off = np.array([[[-7.0, 20.0]]], np.float32)  # rounds to -6
    hm, w_ours = codecs.generate_gaussian_heatmaps((48, 64), off, vis, sigma)
    _, w_theirs = mm_utils.generate_gaussian_heatmaps(
        (48, 64), off, vis.copy(), sigma
    )
    assert hm.max() == 0 and w_ours[0, 0] == 0 and w_theirs[0, 0] == 1


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def _heatmaps(rng, sigma, noise):
    """Peaked heatmaps with noise, a few all-negative channels (no
    maximum: -1) and maxima on the border."""
    enc = codecs.MSRAHeatmap(INPUT, HEATMAP, sigma)
    kp, _ = _keypoints(rng, low=0, high=250)
    hm = enc.encode(kp)['heatmaps']
    hm = hm + rng.normal(0, noise, hm.shape)
    hm[3] -= 5  # no positive maximum
    hm[4, 0, 7] = hm[4].max() + 1  # top border
    hm[5, 30, -1] = hm[5].max() + 1  # right border
    return hm.astype(np.float32)


def test_heatmap_maximum_matches_mmpose():
    rng = np.random.default_rng(4)
    batch = np.stack([_heatmaps(rng, 2, 0.2) for _ in range(4)])
    for heatmaps in (batch[0], batch):  # (K, h, w) and (B, K, h, w)
        locs, vals = codecs.get_heatmap_maximum(heatmaps)
        mm_locs, mm_vals = mm_utils.get_heatmap_maximum(heatmaps.copy())
        np.testing.assert_array_equal(locs, mm_locs)
        np.testing.assert_array_equal(vals, mm_vals)
        assert (locs == -1).any()


@pytest.mark.parametrize('sigma', [2, 3])
def test_decode_matches_mmpose(sigma):
    rng = np.random.default_rng(5)
    ours = codecs.MSRAHeatmap(INPUT, HEATMAP, sigma)
    theirs = mmpose_codecs.MSRAHeatmap(INPUT, HEATMAP, sigma)
    for _ in range(20):
        hm = _heatmaps(rng, sigma, noise=0.2)
        kp, scores = ours.decode(hm.copy())
        mm_kp, mm_scores = theirs.decode(hm.copy())
        np.testing.assert_array_equal(kp, mm_kp)
        np.testing.assert_array_equal(scores, mm_scores)
        # the quarter-pixel refinement: same for the bare helper
        locs, _ = mm_utils.get_heatmap_maximum(hm)
        np.testing.assert_array_equal(
            codecs.refine_keypoints(locs[None], hm),
            mm_utils.refine_keypoints(locs[None].copy(), hm),
        )


@pytest.mark.parametrize('sigma,kernel', [(2, 11), (3, 17)])
def test_dark_decode_matches_mmpose(sigma, kernel):
    """DARK on peaked heatmaps. mmpose computes the Newton step in float32
    (ours in float64): the difference stays at float32 rounding of the
    log-heatmap, ~1e-6 heatmap pixels; we allow 2e-5 (input pixels: x4)."""
    rng = np.random.default_rng(6)
    ours = codecs.MSRAHeatmap(INPUT, HEATMAP, sigma, True, kernel)
    theirs = mmpose_codecs.MSRAHeatmap(INPUT, HEATMAP, sigma, True, kernel)
    for _ in range(20):
        kp = rng.uniform(30, 170, (1, K, 2)).astype(np.float32)
        hm = ours.encode(kp)['heatmaps']
        hm = (hm + rng.normal(0, 0.02, hm.shape)).astype(np.float32)
        before = hm.copy()
        decoded, scores = ours.decode(hm)
        np.testing.assert_array_equal(hm, before)  # ours: not modified
        mm_decoded, mm_scores = theirs.decode(hm.copy())
        np.testing.assert_array_equal(scores, mm_scores)
        np.testing.assert_allclose(decoded, mm_decoded, rtol=0, atol=8e-5)
        # and DARK finds the sub-pixel keypoints (vs 0.25 px steps)
        assert np.abs(decoded - kp).max() < 0.5 * INPUT[0] / HEATMAP[0]


# --------------------------------------------------------------------------
# Geometry: boxes, warp matrices, flips
# --------------------------------------------------------------------------


def test_bbox_xyxy2cs_matches_mmpose():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 500, (10, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 300, (10, 2))], 1)
    for padding in (1.0, 1.25):
        for bbox in (boxes, boxes[0]):
            center, scale = codecs.bbox_xyxy2cs(bbox, padding)
            mm_center, mm_scale = mm_bbox.bbox_xyxy2cs(bbox, padding)
            np.testing.assert_array_equal(center, mm_center)
            np.testing.assert_array_equal(scale, mm_scale)


def _exact_warp(center, scale, rot, output_size, shift, inv):
    """The similarity transform mmpose's docstring defines, in float64:
    box center (+ shift) -> output center, width scale[0] -> output
    width, rotated by ``rot``; a second route to check both against."""
    theta = np.deg2rad(rot)
    ratio = output_size[0] / scale[0]
    c, s = np.cos(theta), np.sin(theta)
    linear = ratio * np.array([[c, s], [-s, c]])
    src = np.asarray(center, float) + np.asarray(scale) * np.asarray(shift)
    m = np.concatenate(
        [linear, (np.array(output_size) / 2 - linear @ src)[:, None]], 1
    )
    if inv:
        full = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        m = full[:2]
    return m


@pytest.mark.parametrize('inv', [False, True], ids=['fwd', 'inv'])
def test_warp_matrix_matches_mmpose(inv):
    rng = np.random.default_rng(8)
    for _ in range(50):
        center = rng.uniform(0, 1000, 2)
        scale = rng.uniform(20, 600, 2)
        rot = float(rng.uniform(-60, 60))
        shift = rng.uniform(-0.2, 0.2, 2)
        ours = codecs.get_warp_matrix(center, scale, rot, INPUT, shift, inv)
        mm = mm_bbox.get_warp_matrix(center, scale, rot, INPUT, shift, inv)
        exact = _exact_warp(center, scale, rot, INPUT, shift, inv)
        size = np.abs(exact).max()
        # ours: the exact matrix, rounded to float32
        assert np.abs(ours - exact).max() <= 2 * np.spacing(np.float32(size))
        # mmpose solves from control points rounded to float32 (up to
        # ~1600 px here): ~1e-6 relative error, which we bound by 1e-5.
        assert np.abs(mm - exact).max() <= 1e-5 * size
        assert np.abs(ours - mm).max() <= 1e-5 * size


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_random_flip_matches_mmpose_flip_helpers(direction):
    rng = np.random.default_rng(9)
    h, w = 240, 320
    flip_indices = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    xy = rng.uniform(0, 200, (1, 2)).astype(np.float32)
    bbox = np.concatenate([xy, xy + 80], 1)
    center = rng.uniform(0, 300, (1, 2)).astype(np.float32)
    keypoints = rng.uniform(-10, 330, (1, K, 2)).astype(np.float32)
    visible = rng.uniform(0, 1, (1, K)).astype(np.float32)
    results = dict(
        img=np.zeros((h, w, 3), np.uint8),
        img_shape=(h, w),
        bbox=bbox.copy(),
        bbox_center=center.copy(),
        keypoints=keypoints.copy(),
        keypoints_visible=visible.copy(),
        flip_indices=flip_indices,
    )
    out = TopdownRandomFlip(prob=1.0, direction=direction)(results)
    assert out['flip'] and out['flip_direction'] == direction
    np.testing.assert_array_equal(
        out['bbox'], mm_bbox.flip_bbox(bbox, (w, h), 'xyxy', direction)
    )
    np.testing.assert_array_equal(
        out['bbox_center'],
        mm_bbox.flip_bbox(center, (w, h), 'center', direction),
    )
    mm_kp, mm_vis = mm_keypoint.flip_keypoints(
        keypoints.copy(), visible.copy(), (w, h), flip_indices, direction
    )
    # mmpose's diagonal flip promotes to float64 (``[w, h] - kp``); ours
    # keeps float32, the correctly rounded value of the same difference.
    assert out['keypoints'].dtype == np.float32
    np.testing.assert_array_equal(out['keypoints'], mm_kp.astype(np.float32))
    np.testing.assert_array_equal(out['keypoints_visible'], mm_vis)


@pytest.mark.parametrize('shift', [True, False])
def test_flip_heatmaps_matches_mmpose(shift):
    tta = pytest.importorskip(
        'mmpose.models.utils.tta',
        reason='mmpose.models needs more of its dependencies than the '
        'test install provides',
    )
    g = torch.Generator().manual_seed(10)
    heatmaps = torch.rand(2, K, 8, 6, generator=g)
    flip_indices = list(range(K))[::-1]
    ours = codecs.flip_heatmaps(heatmaps.clone(), flip_indices, shift)
    theirs = tta.flip_heatmaps(
        heatmaps.clone(), 'heatmap', flip_indices, shift_heatmap=shift
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
