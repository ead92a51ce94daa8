"""Inference API for segmentation models: batches, sliding window, colours.

Thin layer over mmseg's own API: models are built by
:func:`mmseg.apis.init_model`, run by :func:`mmseg.apis.inference_model`
and drawn by :class:`mmseg.visualization.SegLocalVisualizer`. What it adds:

- images are always arrays (read robustly by
  :func:`litehrnet_seg.apis.input_sources.read_image`), so the configs'
  file loaders and label loaders are swapped out of the test pipeline once;
- batches are split into runs of equal-sized images (mmseg's test-time
  data preprocessor stacks a batch, so sizes must match);
- checkpoints without ``meta`` (e.g. converted official ones) load, and
  the class names / palette come from the config's dataset when the
  checkpoint has none;
- sliding-window inference can be switched on for a built model.

Example::

    >>> model = init_segmentor(CONFIG, CHECKPOINT, device='cpu')
    >>> configure_slide_inference(model, (512, 1024), (341, 683))
    >>> results = inference_segmentor(model, [img1, img2], batch_size=2)
    >>> mask, overlay = render_segmentation(img1, results[0], model)
"""

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.apis import inference_model, init_model
from mmseg.models import BaseSegmentor
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from .input_sources import read_image, to_bgr_uint8

# Test-pipeline steps that read files: replaced or dropped for arrays.
_LOADERS = ('LoadImageFromFile', 'LoadImageFromFileChecked')
_LABEL_LOADERS = (
    'LoadAnnotations',
    'LoadAnnotationsChecked',
    'LoadDepthAnnotation',
)


def task_of_config(cfg: Config) -> str:
    """Tell the task of a config from its model type.

    Args:
        cfg (Config): A model config (``cfg.model.type`` is looked up in
            mmseg's model registry).

    Returns:
        str: ``'seg'`` for mmseg segmentors (e.g. ``EncoderDecoder``),
        ``'pose'`` for top-down pose estimators.

    Raises:
        ValueError: The model type is unknown or is neither (e.g. the
            multi-task model); the message asks for an explicit task.
    """
    model_type = cfg.model.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else None
    if cls is not None and issubclass(cls, BaseSegmentor):
        return 'seg'
    if cls is not None and 'TopdownPose' in cls.__name__:
        return 'pose'
    raise ValueError(
        f'cannot tell the task of model type {model_type!r} (expected an '
        'mmseg segmentor such as EncoderDecoder, or TopdownPoseEstimator; '
        'choose one with --task seg|pose). A multi-task checkpoint runs '
        'with a single-task seg or pose config: it loads into either.'
    )


def dataset_meta_from_config(cfg: Config) -> dict:
    """The class names, palette and other metainfo of the config's test
    dataset, as its dataset class would set them.

    Args:
        cfg (Config): A config with ``test_dataloader.dataset`` (or
            ``val_dataloader.dataset``).

    Returns:
        dict: The metainfo (e.g. ``classes`` and ``palette`` for
        Cityscapes, ``skeleton_links`` and ``flip_indices`` for COCO), or
        {} when the config names no known dataset class.
    """
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        cls = DATASETS.get(dataset.get('type', ''))
        if cls is not None and hasattr(cls, '_load_metainfo'):
            return dict(cls._load_metainfo(dataset.get('metainfo')))
    return {}


def _fallback_palette(num_classes: int) -> list[list[int]]:
    """Deterministic colours when neither checkpoint nor config has any."""
    rng = np.random.RandomState(42)
    return rng.randint(0, 256, size=(num_classes, 3)).tolist()


def _complete_seg_meta(meta: dict, num_classes: int) -> dict:
    """Make sure ``classes`` and ``palette`` cover ``num_classes``."""
    meta = dict(meta)
    classes = list(meta.get('classes') or [])
    if len(classes) < num_classes:
        classes += [f'class_{i}' for i in range(len(classes), num_classes)]
    palette = [list(c) for c in meta.get('palette') or []]
    if len(palette) < len(classes):
        palette += _fallback_palette(len(classes))[len(palette) :]
    meta.update(classes=tuple(classes), palette=palette)
    return meta


def _array_test_pipeline(cfg: Config) -> list:
    """The config's test pipeline fed with arrays instead of files."""
    pipeline = cfg.get('test_pipeline')
    if not pipeline:
        pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = [
        copy.deepcopy(step)
        for step in pipeline
        if step.get('type') not in _LABEL_LOADERS
    ]
    if pipeline and pipeline[0].get('type') in _LOADERS:
        pipeline = pipeline[1:]
    return [dict(type='LoadImageFromNDArray'), *pipeline]


def init_segmentor(
    config: str | Path | Config,
    checkpoint: str | None = None,
    device: str = 'cpu',
    cfg_options: dict | None = None,
) -> torch.nn.Module:
    """Build a segmentor for inference on image arrays.

    Built by :func:`mmseg.apis.init_model`; then the checkpoint is loaded
    (one without ``meta`` is fine), SyncBN becomes BN (as
    ``MMSegInferencer`` does) and the test pipeline is set to take arrays.
    Class names and palette come from the checkpoint's ``dataset_meta``,
    else from the config's test dataset class (e.g. Cityscapes).

    Args:
        config (str | Path | Config): Segmentation config.
        checkpoint (str, optional): Checkpoint; None keeps the random
            initial weights (for smoke tests).
        device (str): Torch device, e.g. ``'cpu'``, ``'cuda'``,
            ``'cuda:1'``. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (its
        ``test_pipeline`` made for arrays) and ``dataset_meta``
        (``classes`` and ``palette``, one per class) attributes.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # mmseg's init_model needs a 'meta' in the checkpoint: load it here.
    model = init_model(cfg, None, device='cpu')
    meta: dict = {}
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        meta = dict((loaded.get('meta') or {}).get('dataset_meta') or {})
    config_meta = dataset_meta_from_config(cfg)
    if not meta.get('classes'):
        meta = config_meta
    elif not meta.get('palette') and list(meta['classes']) == list(
        config_meta.get('classes', [])
    ):
        meta['palette'] = config_meta.get('palette')
    num_classes = getattr(model, 'num_classes', 0) or len(
        meta.get('classes') or []
    )
    model.dataset_meta = _complete_seg_meta(meta, num_classes)
    # Inference needs no synchronised statistics (and SyncBN needs a GPU
    # outside eval mode); MMSegInferencer does the same.
    model = revert_sync_batchnorm(model)
    model.cfg.test_pipeline = _array_test_pipeline(model.cfg)
    return model.to(device).eval()


def configure_slide_inference(
    model: torch.nn.Module,
    crop_size: Sequence[int],
    stride: Sequence[int] | None = None,
) -> None:
    """Switch a built segmentor to sliding-window inference (mmseg's
    ``test_cfg=dict(mode='slide', ...)``).

    Windows overlap by ``crop - stride`` and their logits are averaged.
    Images smaller than a window are run whole (mmseg's behaviour).

    Args:
        model (nn.Module): A segmentor from :func:`init_segmentor`.
        crop_size (Sequence[int]): Window (height, width).
        stride (Sequence[int], optional): Step (height, width), at most the
            window. Defaults to two thirds of the window, as mmseg's
            Cityscapes configs use (512x1024 windows, 341x683 steps).

    Raises:
        ValueError: A size is not positive or a stride exceeds the window
            (those pixels would never be predicted).
    """
    crop = tuple(int(v) for v in crop_size)
    if stride is None:
        stride = tuple(max(1, round(v * 2 / 3)) for v in crop)
    step = tuple(int(v) for v in stride)
    if len(crop) != 2 or len(step) != 2 or min(crop + step) < 1:
        raise ValueError(
            f'slide mode: crop size {crop} and stride {step} must be two '
            'positive numbers each (height width)'
        )
    if step[0] > crop[0] or step[1] > crop[1]:
        raise ValueError(
            f'slide mode: stride {step} must not exceed the crop size '
            f'{crop}, or pixels between windows get no prediction'
        )
    test_cfg = ConfigDict(mode='slide', crop_size=crop, stride=step)
    model.test_cfg = test_cfg
    model.cfg.model.test_cfg = copy.deepcopy(test_cfg)


def _as_array(image: str | Path | np.ndarray) -> np.ndarray:
    """Image path or array -> BGR uint8 (H, W, 3) array."""
    if isinstance(image, np.ndarray):
        return to_bgr_uint8(image, 'image array')
    return read_image(image)


def inference_segmentor(
    model: torch.nn.Module,
    images: str | Path | np.ndarray | Sequence[str | Path | np.ndarray],
    batch_size: int = 1,
) -> list:
    """Segment images, ``batch_size`` per forward pass.

    Consecutive images of the same size share a forward (mmseg stacks a
    test batch, so sizes must match); any size works, including images
    smaller than the network stride. Predictions have the input's size.

    Args:
        model (nn.Module): A segmentor from :func:`init_segmentor`.
        images (str | Path | np.ndarray | Sequence): One image or several:
            file paths (read with
            :func:`~litehrnet_seg.apis.input_sources.read_image`, so gray,
            RGBA and 16-bit files work) or BGR arrays (gray, BGRA, 16-bit
            and float arrays are converted the same way).
        batch_size (int): Images per forward pass. Defaults to 1.

    Returns:
        list[SegDataSample]: One per image, in order, with ``pred_sem_seg``
        (1, H, W) train ids and ``seg_logits``. See :func:`label_map`.

    Raises:
        ValueError: ``batch_size`` < 1.
        ImageReadError: An image file cannot be read.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if isinstance(images, (str, Path, np.ndarray)):
        images = [images]
    arrays = [_as_array(image) for image in images]
    results = []
    for start in range(0, len(arrays), batch_size):
        batch = arrays[start : start + batch_size]
        run: list[np.ndarray] = []
        for image in batch:
            if run and image.shape != run[0].shape:
                results += inference_model(model, run)
                run = []
            run.append(image)
        results += inference_model(model, run)
    return results


def label_map(result) -> np.ndarray:
    """The predicted train ids of one result as an (H, W) array.

    Args:
        result (SegDataSample | np.ndarray | torch.Tensor): A result of
            :func:`inference_segmentor`, or a label map.

    Returns:
        np.ndarray: (H, W) ``uint8`` ids (``uint16`` beyond 255 ids).
    """
    if hasattr(result, 'pred_sem_seg'):
        result = result.pred_sem_seg.data
    if isinstance(result, torch.Tensor):
        result = result.detach().cpu().numpy()
    labels = np.asarray(result).reshape(np.shape(result)[-2:])
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
    return labels.astype(dtype)


def render_segmentation(
    image: np.ndarray,
    result,
    dataset_meta: dict | torch.nn.Module,
    opacity: float = 0.5,
    with_labels: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a prediction with mmseg's ``SegLocalVisualizer``.

    Args:
        image (np.ndarray): The input image, BGR uint8 (H, W, 3).
        result (SegDataSample | np.ndarray): A result of
            :func:`inference_segmentor` or an (H, W) label map.
        dataset_meta (dict | nn.Module): ``classes`` and ``palette``
            (RGB), or a model from :func:`init_segmentor`.
        opacity (float): Weight of the mask in the overlay, in (0, 1].
            Defaults to 0.5.
        with_labels (bool): Write class names on the overlay. Defaults to
            False.

    Returns:
        tuple[np.ndarray, np.ndarray]: The colour mask (palette colour per
        pixel, black for ids without a class, e.g. 255) and the overlay
        (image blended with the mask), both BGR uint8 of the image's size.
    """
    if not 0 < opacity <= 1:
        raise ValueError(f'opacity must be in (0, 1], got {opacity}')
    meta = getattr(dataset_meta, 'dataset_meta', dataset_meta)
    labels = torch.from_numpy(label_map(result).astype(np.int64))
    if tuple(labels.shape) != image.shape[:2]:
        raise ValueError(
            f'prediction size {tuple(labels.shape)} differs from the image '
            f'size {image.shape[:2]}'
        )
    sample = SegDataSample(pred_sem_seg=PixelData(data=labels[None]))
    rgb = np.ascontiguousarray(image[..., ::-1])
    with warnings.catch_warnings():
        # The visualizer warns that it has no storage backend: none needed.
        warnings.simplefilter('ignore')
        visualizer = SegLocalVisualizer(name='litehrnet_seg_inference')
    # By keyword: mmseg 1.2.2's __init__ passes classes and palette to
    # set_dataset_meta in swapped positions.
    visualizer.set_dataset_meta(
        classes=list(meta['classes']),
        palette=[list(c) for c in meta['palette']],
    )

    def draw(alpha: float, labelled: bool) -> np.ndarray:
        visualizer.alpha = alpha
        visualizer.add_datasample(
            'prediction', rgb, sample, draw_gt=False, with_labels=labelled
        )
        return np.ascontiguousarray(visualizer.get_image()[..., ::-1])

    mask = draw(1.0, False)
    if with_labels:
        overlay = draw(opacity, True)
    else:
        # The same blend as the visualizer's, without a second pass over
        # the image (half the drawing time on 2048x1024 frames).
        overlay = cv2.addWeighted(image, 1 - opacity, mask, opacity, 0)
    return mask, overlay
