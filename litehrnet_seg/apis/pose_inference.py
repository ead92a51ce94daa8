"""Inference API for top-down pose models."""

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint


def init_model(
    config: str | Config, checkpoint: str | None = None, device: str = 'cpu'
) -> torch.nn.Module:
    """Build a model from a config and load a checkpoint.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint to load (official
            ``keypoint_head.*`` keys are accepted for pose models).
        device (str): Device. Defaults to 'cpu'.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and
        ``dataset_meta`` attributes.
    """
    from mmseg.registry import MODELS

    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    model.dataset_meta = {}
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        model.dataset_meta = ckpt.get('meta', {}).get('dataset_meta', {})
    return model.to(device).eval()


def inference_topdown(
    model: torch.nn.Module,
    image: str | np.ndarray,
    bboxes: np.ndarray | None = None,
) -> list:
    """Estimate the pose of each person box in one image.

    Args:
        model (nn.Module): A top-down pose model from :func:`init_model`.
        image (str | np.ndarray): Image path or BGR array.
        bboxes (np.ndarray, optional): (N, 4) person boxes, xyxy pixels.
            Defaults to the whole image as one box.

    Returns:
        list[PoseDataSample]: One sample per box with ``pred_instances``
        (``keypoints`` (1, K, 2) in image pixels, ``keypoint_scores``).
    """
    cfg = model.cfg
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    if isinstance(image, str):
        base = dict(img_path=image)
    else:
        base = dict(
            img=image,
            img_path='',
            img_shape=image.shape[:2],
            ori_shape=image.shape[:2],
        )
        # An array needs no loading: skip the pipeline's first step.
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline[1:])
    if bboxes is None:
        if isinstance(image, str):
            import mmcv

            height, width = mmcv.imread(image).shape[:2]
        else:
            height, width = image.shape[:2]
        bboxes = np.array([[0, 0, width, height]], dtype=np.float32)
    bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    meta = dict(model.dataset_meta)
    items = []
    for i, bbox in enumerate(bboxes):
        item = dict(
            base,
            bbox=bbox[None],
            bbox_score=np.ones(1, np.float32),
            id=i,
            img_id=0,
            category_id=1,
            **meta,
        )
        items.append(pipeline(item))
    with torch.no_grad():
        return model.test_step(pseudo_collate(items))
