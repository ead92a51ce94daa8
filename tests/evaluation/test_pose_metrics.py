"""COCO keypoint AP (CocoMetric), OKS-NMS and MPII PCKh on the samples.

Predictions are built as the model will return them: ``PoseDataSample``
with ``pred_instances`` in original image coordinates, passed through
mmengine's ``Evaluator`` (which hands ``to_dict()`` output to the metric).
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from mmseg.registry import DATASETS, METRICS
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import litehrnet_seg  # noqa: F401  (registers the modules under test)
from litehrnet_seg.evaluation import CocoMetric, MpiiPCKAccuracy, oks_nms
from litehrnet_seg.evaluation.functional import oks_iou
from litehrnet_seg.structures.pose_data_sample import PoseDataSample

DATA = Path(__file__).parents[1] / 'data'
COCO_ANN = DATA / 'coco' / 'test_coco.json'
STATS = ('AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)')
STATS += ('AR', 'AR .5', 'AR .75', 'AR (M)', 'AR (L)')


@pytest.fixture(scope='module')
def coco_ds():
    return DATASETS.build(
        dict(
            type='CocoDataset',
            data_root=str(DATA / 'coco'),
            ann_file='test_coco.json',
            test_mode=True,
        )
    )


@pytest.fixture(scope='module')
def mpii_ds():
    return DATASETS.build(
        dict(
            type='MpiiDataset',
            data_root=str(DATA / 'mpii'),
            ann_file='test_mpii.json',
            test_mode=True,
        )
    )


def make_sample(
    item: dict,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray | None = None,
    bbox_score: float = 1.0,
    **metainfo,
) -> PoseDataSample:
    """A model output for one dataset item."""
    num_kpts = keypoints.shape[0]
    if keypoint_scores is None:
        keypoint_scores = np.ones(num_kpts, np.float32)
    x1, y1, x2, y2 = item['bbox'][0]
    sample = PoseDataSample(
        metainfo=dict(
            img_id=item['img_id'],
            id=item['id'],
            category_id=item.get('category_id', 1),
            **metainfo,
        )
    )
    sample.pred_instances = InstanceData(
        keypoints=keypoints[None].astype(np.float32),
        keypoint_scores=keypoint_scores[None].astype(np.float32),
        bboxes=item['bbox'],
        bbox_scores=np.array([bbox_score], np.float32),
        # Product of the (padded) input scale, as the model sets it.
        areas=np.array([(x2 - x1) * (y2 - y1) * 1.25**2], np.float32),
    )
    sample.gt_instances = InstanceData(
        bboxes=item['bbox'],
        keypoints=item['keypoints'],
        keypoints_visible=item['keypoints_visible'],
    )
    return sample


def evaluate(metric_cfg: dict, samples: list, meta: dict) -> dict:
    evaluator = Evaluator(metric_cfg)
    evaluator.dataset_meta = meta
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


def items_of(ds) -> list[dict]:
    return [ds.get_data_info(i) for i in range(len(ds))]


def noisy_predictions(ds, seed: int = 0):
    """GT + noise, random keypoint and box scores."""
    rng = np.random.default_rng(seed)
    preds = []
    for item in items_of(ds):
        kpts = item['keypoints'][0] + rng.normal(0, 6, size=(17, 2))
        scores = rng.uniform(0, 1, size=17)
        preds.append((item, kpts, scores, float(rng.uniform(0.3, 1))))
    return preds


def direct_cocoeval(results: list[dict], sigmas) -> np.ndarray:
    """pycocotools run by hand on a list of COCO results."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(COCO_ANN))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, 'keypoints')
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


# ------------------------------------------------------------ CocoMetric


def test_gt_predictions_give_ap_one(coco_ds):
    samples = [
        make_sample(item, item['keypoints'][0]) for item in items_of(coco_ds)
    ]
    metrics = evaluate(
        dict(type='CocoMetric', ann_file=str(COCO_ANN)),
        samples,
        coco_ds.metainfo,
    )
    assert list(metrics) == [f'coco/{k}' for k in STATS]
    assert metrics['coco/AP'] >= 0.99
    assert metrics['coco/AR'] >= 0.99
    assert metrics['coco/AP .5'] >= 0.99


def test_use_area_false_also_one(coco_ds):
    samples = [
        make_sample(item, item['keypoints'][0]) for item in items_of(coco_ds)
    ]
    metrics = evaluate(
        dict(type='CocoMetric', ann_file=str(COCO_ANN), use_area=False),
        samples,
        coco_ds.metainfo,
    )
    assert metrics['coco/AP'] >= 0.99


@pytest.mark.parametrize('score_mode', ['bbox', 'bbox_keypoint'])
@pytest.mark.parametrize('nms_mode', ['none', 'oks_nms'])
def test_agrees_with_pycocotools(coco_ds, tmp_path, score_mode, nms_mode):
    preds = noisy_predictions(coco_ds)
    samples = [make_sample(it, k, s, b) for it, k, s, b in preds]
    prefix = tmp_path / 'out' / 'results'
    metrics = evaluate(
        dict(
            type='CocoMetric',
            ann_file=str(COCO_ANN),
            score_mode=score_mode,
            nms_mode=nms_mode,
            outfile_prefix=str(prefix),
        ),
        samples,
        coco_ds.metainfo,
    )
    # The same predictions, rescored by hand, evaluated by pycocotools.
    expected = []
    for item, kpts, scores, bbox_score in preds:
        if score_mode == 'bbox':
            score = bbox_score
        else:
            valid = scores > 0.2
            score = bbox_score * scores[valid].mean()
        kpts3 = np.concatenate([kpts, scores[:, None]], 1).astype(np.float32)
        expected.append(
            dict(
                image_id=item['img_id'],
                category_id=1,
                keypoints=kpts3.astype(float).ravel().tolist(),
                score=float(score),
            )
        )
    stats = direct_cocoeval(expected, coco_ds.metainfo['sigmas'])
    assert 0.2 < stats[0] < 0.99  # noisy: neither perfect nor useless
    for name, value in zip(STATS, stats, strict=True):
        assert metrics[f'coco/{name}'] == pytest.approx(value, abs=1e-9)
    # The results json is written where asked, in COCO results format.
    written = json.loads(Path(f'{prefix}.keypoints.json').read_text())
    assert len(written) == len(expected)  # nothing suppressed here
    by_img = sorted(written, key=lambda r: (r['image_id'], -r['score']))
    ref = sorted(expected, key=lambda r: (r['image_id'], -r['score']))
    for got, want in zip(by_img, ref, strict=True):
        assert got['score'] == pytest.approx(want['score'], rel=1e-5)
        np.testing.assert_allclose(got['keypoints'], want['keypoints'], 1e-5)


def test_oks_nms_removes_duplicate_in_metric(coco_ds, tmp_path):
    items = items_of(coco_ds)
    # Person 0 is found with score 1, the others with 0.5; a near copy of
    # person 0 (another detection of the same person) with score 0.9 is a
    # false positive ranked above true positives unless NMS removes it.
    samples = [
        make_sample(item, item['keypoints'][0], bbox_score=0.5)
        for item in items[1:]
    ]
    samples.append(make_sample(items[0], items[0]['keypoints'][0]))
    dup = dict(items[0], id=10**9)
    shifted = items[0]['keypoints'][0] + 1.0
    samples.append(make_sample(dup, shifted, bbox_score=0.9))
    results = {}
    for nms_mode in ('none', 'oks_nms'):
        prefix = tmp_path / nms_mode
        results[nms_mode] = evaluate(
            dict(
                type='CocoMetric',
                ann_file=str(COCO_ANN),
                nms_mode=nms_mode,
                outfile_prefix=str(prefix),
            ),
            samples,
            coco_ds.metainfo,
        )
        written = json.loads(Path(f'{prefix}.keypoints.json').read_text())
        assert len(written) == (13 if nms_mode == 'none' else 12)
    assert results['oks_nms']['coco/AP'] >= 0.99
    assert results['none']['coco/AP'] < results['oks_nms']['coco/AP']


def test_duplicate_ids_counted_once(coco_ds, tmp_path):
    # Distributed samplers pad the last batch with repeated samples.
    items = items_of(coco_ds)
    samples = [make_sample(item, item['keypoints'][0]) for item in items]
    samples += samples[:3]
    prefix = tmp_path / 'r'
    evaluate(
        dict(
            type='CocoMetric',
            ann_file=str(COCO_ANN),
            nms_mode='none',
            outfile_prefix=str(prefix),
        ),
        samples,
        coco_ds.metainfo,
    )
    assert len(json.loads(Path(f'{prefix}.keypoints.json').read_text())) == 12


def test_format_only_writes_json(coco_ds, tmp_path):
    item = items_of(coco_ds)[0]
    prefix = tmp_path / 'sub' / 'test_dev'
    metrics = evaluate(
        dict(
            type='CocoMetric',
            ann_file=str(COCO_ANN),
            format_only=True,
            outfile_prefix=str(prefix),
        ),
        [make_sample(item, item['keypoints'][0])],
        coco_ds.metainfo,
    )
    assert metrics == {}
    (res,) = json.loads(Path(f'{prefix}.keypoints.json').read_text())
    assert res['image_id'] == item['img_id'] and res['category_id'] == 1
    assert len(res['keypoints']) == 51


def test_coco_metric_errors(tmp_path, coco_ds):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        CocoMetric(ann_file=str(tmp_path / 'nope.json'))
    with pytest.raises(ValueError, match='outfile_prefix'):
        CocoMetric(ann_file=str(COCO_ANN), format_only=True)
    with pytest.raises(ValueError, match='nms_mode'):
        CocoMetric(ann_file=str(COCO_ANN), nms_mode='soft')
    metric = CocoMetric(ann_file=str(COCO_ANN))
    metric.dataset_meta = coco_ds.metainfo
    with pytest.raises(ValueError, match='no predictions'):
        metric.compute_metrics([])
    with pytest.raises(ValueError, match='pred_instances'):
        metric.process(None, [dict(img_id=1, id=1)])
    # An image id the annotation file does not know.
    item = dict(items_of(coco_ds)[0], img_id=4242)
    metric.process(None, [make_sample(item, item['keypoints'][0]).to_dict()])
    with pytest.raises(ValueError, match='4242'):
        metric.compute_metrics(metric.results)


def test_registered():
    assert METRICS.get('CocoMetric') is CocoMetric
    assert METRICS.get('MpiiPCKAccuracy') is MpiiPCKAccuracy


# --------------------------------------------------------------- OKS-NMS


def test_oks_nms_removes_duplicate():
    rng = np.random.default_rng(0)
    base = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    far = base.copy()
    far[:, :2] += 300
    near = base.copy()
    near[:, :2] += 0.5
    db = [
        dict(keypoints=near, score=0.8, area=5000.0),
        dict(keypoints=base, score=0.9, area=5000.0),
        dict(keypoints=far, score=0.7, area=5000.0),
    ]
    np.testing.assert_array_equal(oks_nms(db, 0.9), [1, 2])
    # A threshold above every OKS keeps everything, best first.
    np.testing.assert_array_equal(oks_nms(db, 1.0), [1, 0, 2])
    assert len(oks_nms([], 0.9)) == 0


def test_oks_iou_values():
    g = np.zeros((17, 3))
    d = np.zeros((2, 17, 3))
    d[1, :, 0] = 10.0
    oks = oks_iou(g, d, 100.0, np.array([100.0, 100.0]))
    assert oks[0] == pytest.approx(1.0)
    sigmas = np.array(
        [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072]
        + [0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
    )
    want = np.mean(np.exp(-(10.0**2) / (2 * sigmas) ** 2 / 100.0 / 2))
    assert oks[1] == pytest.approx(want, rel=1e-5)


# ------------------------------------------------------------------ PCKh

HEAD = 60.0  # px; the sample has no mpii_gt_val.mat, so the test sets it


def mpii_samples(ds, moves=None, head=HEAD) -> list[PoseDataSample]:
    """GT predictions, with ``moves[joint] = (dx, dy)`` applied to all."""
    samples = []
    for item in items_of(ds):
        kpts = item['keypoints'][0].copy()
        for joint, delta in (moves or {}).items():
            kpts[joint] += delta
        samples.append(make_sample(item, kpts, head_size=head))
    return samples


def visible_counts(ds) -> np.ndarray:
    return sum(it['keypoints_visible'][0] for it in items_of(ds))


def test_pckh_gt_predictions_is_100(mpii_ds):
    metrics = evaluate(
        dict(type='MpiiPCKAccuracy'), mpii_samples(mpii_ds), mpii_ds.metainfo
    )
    assert metrics['pck/PCKh'] == 100.0
    assert metrics['pck/PCKh@0.1'] == 100.0
    for group in ('Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee'):
        assert metrics[f'pck/{group}'] == 100.0
    assert metrics['pck/Ankle'] == 100.0
    for name in mpii_ds.metainfo['keypoint_names']:
        assert metrics[f'pck/{name}'] == 100.0


def test_pckh_drops_when_joints_move(mpii_ds):
    names = mpii_ds.metainfo['keypoint_names']
    rw, lk = names.index('right_wrist'), names.index('left_knee')
    counts = visible_counts(mpii_ds)
    in_mean = [n not in ('pelvis', 'thorax') for n in names]
    total = counts[in_mean].sum()
    # right wrist moved by 0.6 head: wrong at 0.5; left knee by 0.3 head:
    # right at 0.5, wrong at 0.1.
    samples = mpii_samples(
        mpii_ds, {rw: (0.6 * HEAD, 0.0), lk: (0.0, 0.3 * HEAD)}
    )
    metrics = evaluate(dict(type='MpiiPCKAccuracy'), samples, mpii_ds.metainfo)
    assert metrics['pck/right_wrist'] == 0.0
    assert metrics['pck/left_wrist'] == 100.0
    assert metrics['pck/Wrist'] == 50.0
    assert metrics['pck/left_knee'] == 100.0
    assert metrics['pck/PCKh'] == pytest.approx(
        100.0 * (total - counts[rw]) / total
    )
    assert metrics['pck/PCKh@0.1'] == pytest.approx(
        100.0 * (total - counts[rw] - counts[lk]) / total
    )
    # Pelvis/thorax errors do not enter the mean.
    pelvis = names.index('pelvis')
    metrics = evaluate(
        dict(type='MpiiPCKAccuracy'),
        mpii_samples(mpii_ds, {pelvis: (5 * HEAD, 0.0)}),
        mpii_ds.metainfo,
    )
    assert metrics['pck/pelvis'] == 0.0
    assert metrics['pck/PCKh'] == 100.0


def test_pckh_ignores_invisible_joints(mpii_ds):
    names = mpii_ds.metainfo['keypoint_names']
    ra = names.index('right_ankle')
    counts = visible_counts(mpii_ds)
    assert counts[ra] == 3  # two of the five people have no ankles
    # Moving the ankles only matters where they are visible.
    metrics = evaluate(
        dict(type='MpiiPCKAccuracy'),
        mpii_samples(mpii_ds, {ra: (HEAD, HEAD)}),
        mpii_ds.metainfo,
    )
    assert metrics['pck/right_ankle'] == 0.0
    samples = mpii_samples(mpii_ds)
    for sample in samples:
        visible = sample.gt_instances.keypoints_visible[0, ra]
        if not visible:
            sample.pred_instances.keypoints[0, ra] += 10 * HEAD
    metrics = evaluate(dict(type='MpiiPCKAccuracy'), samples, mpii_ds.metainfo)
    assert metrics['pck/right_ankle'] == 100.0


def test_pckh_needs_head_size(mpii_ds):
    item = items_of(mpii_ds)[0]
    sample = make_sample(item, item['keypoints'][0])  # no head_size
    metric = MpiiPCKAccuracy()
    with pytest.raises(ValueError, match='headbox_file'):
        metric.process(None, [sample.to_dict()])
    with pytest.raises(ValueError, match="norm_item='head' or 'bbox'"):
        MpiiPCKAccuracy(norm_item='torso')


def test_pck_normalised_by_box_without_head_sizes(mpii_ds):
    """norm_item='bbox' scores data that has no head boxes."""
    items = items_of(mpii_ds)
    metric = MpiiPCKAccuracy(norm_item='bbox')
    metric.dataset_meta = mpii_ds.metainfo
    samples = [make_sample(it, it['keypoints'][0]).to_dict() for it in items]
    metric.process(None, samples)
    perfect = metric.evaluate(len(samples))
    assert perfect['pck/PCK'] == pytest.approx(100.0)
    assert 'pck/PCKh' not in perfect
    # Move every visible joint by 0.6 of its person's longest box side.
    moved = []
    for it in items:
        box = np.asarray(it['bbox']).reshape(4)
        side = max(box[2] - box[0], box[3] - box[1])
        moved.append(
            make_sample(it, it['keypoints'][0] + [0.6 * side, 0]).to_dict()
        )
    metric.process(None, moved)
    assert metric.evaluate(len(moved))['pck/PCK'] == pytest.approx(0.0)
