"""Pose model: oracle round trips on real annotations, flip test, keys.

The oracle tests run the real data path (dataset -> top-down affine crop ->
heatmap targets -> decode -> inverse affine -> metric) with the target
heatmaps standing in for the network, so transforms, codec and metrics are
checked together on real COCO and MPII annotations.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.structures import InstanceData
from mmseg.registry import DATASETS, METRICS, MODELS

import litehrnet_seg  # noqa: F401
from litehrnet_seg.checkpoint import load_checkpoint
from litehrnet_seg.codecs import MSRAHeatmap
from litehrnet_seg.models.pose.heatmap_head import HeatmapHead

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / 'tests' / 'data'
MODEL_CFG = ROOT / 'configs/_base_/models/topdown-heatmap_litehrnet18.py'


def oracle_predictions(dataset, codec: MSRAHeatmap) -> list[dict]:
    """Decode each sample's own target heatmaps into image keypoints."""
    outputs = []
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        keypoints, scores = codec.decode(sample.gt_fields.heatmaps.numpy())
        scale = np.asarray(sample.metainfo['input_scale'], np.float32)
        sample.pred_instances = InstanceData(
            keypoints=HeatmapHead._crop_to_image(keypoints, sample.metainfo),
            keypoint_scores=scores,
            bboxes=sample.gt_instances.bboxes,
            bbox_scores=sample.gt_instances.bbox_scores,
            areas=np.prod(scale.reshape(-1, 2), axis=1),
        )
        outputs.append(sample.to_dict())
    return outputs


def topdown_pipeline(input_size, heatmap_size, sigma=2):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='GetBBoxCenterScale', padding=1.25),
        dict(type='TopdownAffine', input_size=input_size),
        dict(
            type='GenerateHeatmapTarget',
            encoder=dict(
                input_size=input_size, heatmap_size=heatmap_size, sigma=sigma
            ),
        ),
        dict(type='PackPoseInputs'),
    ]


def test_coco_oracle_round_trip_gives_full_ap():
    encoder = dict(input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
    dataset = DATASETS.build(
        dict(
            type='CocoDataset',
            data_root=str(DATA / 'coco'),
            ann_file='test_coco.json',
            data_prefix=dict(img=''),
            test_mode=True,
            pipeline=topdown_pipeline(**encoder),
        )
    )
    assert len(dataset) == 12
    metric = METRICS.build(
        dict(type='CocoMetric', ann_file=str(DATA / 'coco/test_coco.json'))
    )
    metric.dataset_meta = dataset.metainfo
    outputs = oracle_predictions(dataset, MSRAHeatmap(**encoder))
    metric.process([], outputs)
    results = metric.evaluate(len(outputs))
    assert results['coco/AP'] >= 0.99, results
    # A wrong inverse transform (e.g. ignoring the crop centre) must not
    # pass: shifting every prediction by 10 px costs AP.
    for out in outputs:
        out['pred_instances']['keypoints'] = (
            out['pred_instances']['keypoints'] + 10
        )
    metric.process([], outputs)
    assert metric.evaluate(len(outputs))['coco/AP'] < 0.9


def test_mpii_oracle_round_trip_gives_full_pckh():
    encoder = dict(input_size=(256, 256), heatmap_size=(64, 64), sigma=2)
    dataset = DATASETS.build(
        dict(
            type='MpiiDataset',
            data_root=str(DATA / 'mpii'),
            ann_file='test_mpii.json',
            data_prefix=dict(img=''),
            test_mode=True,
            pipeline=topdown_pipeline(**encoder),
        )
    )
    outputs = oracle_predictions(dataset, MSRAHeatmap(**encoder))
    # The sample has no mpii_gt_val.mat, so the test provides head sizes:
    # a tenth of the person box, a strict normaliser (PCKh@0.5 then allows
    # errors of 5% of the box).
    for out in outputs:
        out['head_size'] = 0.1 * float(np.max(out['input_scale']))
    metric = METRICS.build(dict(type='MpiiPCKAccuracy'))
    metric.dataset_meta = dataset.metainfo
    metric.process([], outputs)
    results = metric.evaluate(len(outputs))
    assert results['pck/PCKh'] == pytest.approx(100.0), results


def build_pose_model():
    model = MODELS.build(Config.fromfile(MODEL_CFG).model)
    model.init_weights()
    return model.eval()


def test_official_checkpoint_keys_load_without_missing_or_unexpected(
    tmp_path,
):
    """An official (mmpose 0.x, ``keypoint_head.*``) file loads strictly
    through the project's loader, which renames the head."""
    model = build_pose_model()
    official = {
        (
            k.replace('head.', 'keypoint_head.', 1)
            if k.startswith('head.')
            else k
        ): v.clone()
        for k, v in model.state_dict().items()
    }
    assert any(k.startswith('keypoint_head.final_layer') for k in official)
    path = tmp_path / 'official.pth'
    torch.save({'state_dict': official}, path)
    fresh = MODELS.build(Config.fromfile(MODEL_CFG).model)
    load_checkpoint(fresh, str(path))  # strict: raises on any misfit
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        assert torch.equal(
            fresh.eval()(x, mode='tensor'), model(x, mode='tensor')
        )


def test_flip_test_on_symmetric_input_gives_symmetric_heatmaps():
    """A left/right-mirrored image must give mirrored keypoints."""
    model = build_pose_model()
    half = torch.randn(1, 3, 64, 24)
    image = torch.cat([half, half.flip(-1)], dim=-1)  # mirror-symmetric
    flip_indices = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    from litehrnet_seg.codecs import flip_heatmaps

    with torch.no_grad():
        heatmaps = model(image, mode='tensor')
        flipped = model(image.flip(-1), mode='tensor')
    # Flipping back the heatmaps of the flipped (= same) image, without the
    # one-pixel shift, is exactly the left/right-swapped mirror image.
    back = flip_heatmaps(flipped, flip_indices, shift_heatmap=False)
    assert torch.allclose(back, heatmaps[:, flip_indices].flip(-1))
    averaged = (heatmaps + back) / 2
    assert torch.allclose(
        averaged, averaged[:, flip_indices].flip(-1), atol=1e-6
    )
