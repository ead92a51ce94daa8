"""Segmentation inferencer: mmseg's ``MMSegInferencer`` on our models.

Changed from mmseg's: the model comes from the project's strict
:func:`~litehrnet_seg.checkpoint.build_model` (another arch's or task's
checkpoint is refused; class names and palette fall back to the config's
dataset) and is optimised by default; batches are split into runs of
equal-sized images (the test preprocessor stacks them); slide mode can be
switched on; :meth:`SegInferencer.draw` gives masks and overlays of any
size, 1x1 included.
"""

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import PixelData
from mmseg.apis import MMSegInferencer
from mmseg.structures import SegDataSample

from .fast_path import FastPathModelMixin
from .inputs import InputItem

# Test-pipeline steps that read files: replaced or dropped for arrays.
LOADERS = ('LoadImageFromFile', 'LoadImageFromFileChecked')
LABEL_LOADERS = ('LoadAnnotations', 'LoadAnnotationsChecked')


def array_pipeline(cfg: Config) -> list:
    """The config's test pipeline for inference: mmseg's
    ``InferencerLoader`` (arrays, paths or dicts) replaces the file loader,
    label loaders are dropped."""
    steps = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    steps = [copy.deepcopy(s) for s in steps if s['type'] not in LABEL_LOADERS]
    if steps and steps[0]['type'] in LOADERS:
        steps = steps[1:]
    return [dict(type='InferencerLoader'), *steps]


def complete_seg_meta(meta: dict, num_classes: int) -> dict:
    """``classes`` and ``palette`` covering ``num_classes`` (names
    ``class_i`` and fixed random colours for the ones missing)."""
    classes = list(meta.get('classes') or [])
    classes += [f'class_{i}' for i in range(len(classes), num_classes)]
    palette = [list(c) for c in meta.get('palette') or []]
    extra = np.random.RandomState(42).randint(0, 256, (len(classes), 3))
    palette += extra.tolist()[len(palette) :]
    return {**meta, 'classes': tuple(classes), 'palette': palette}


def label_map(result: SegDataSample | np.ndarray) -> np.ndarray:
    """Predicted train ids as an (H, W) ``uint8`` array (``uint16`` past
    255 ids)."""
    if isinstance(result, SegDataSample):
        result = result.pred_sem_seg.data
    if isinstance(result, torch.Tensor):
        result = result.cpu().numpy()
    labels = np.asarray(result).reshape(np.shape(result)[-2:])
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
    return labels.astype(dtype)


class SegInferencer(FastPathModelMixin, MMSegInferencer):
    """Segmentation inference on image arrays, optimised by default.

    Args:
        config (str | Path): Segmentation config.
        checkpoint (str, optional): Checkpoint, loaded strictly; None keeps
            the initial (random) weights, for smoke tests.
        device (str): Torch device. Defaults to 'cpu'.
        optimize (bool): Use :func:`optimize_for_inference` (BN folding,
            channels_last). Defaults to True.
        compile (bool): Also ``torch.compile``. Defaults to False.
        cfg_options (dict, optional): Overrides merged into the config.
        opacity (float): Mask weight in the overlay, in (0, 1].
        with_labels (bool): Write class names on the overlay.
        save_label_ids (bool): :meth:`draw` also returns the train ids.

    Raises:
        CheckpointError: The checkpoint cannot be read (names it).
        CheckpointMismatchError: It does not fit the config's model.
    """

    def __init__(
        self,
        config: str | Path,
        checkpoint: str | None = None,
        *,
        device: str = 'cpu',
        optimize: bool = True,
        compile: bool = False,
        cfg_options: dict | None = None,
        opacity: float = 0.5,
        with_labels: bool = False,
        save_label_ids: bool = False,
    ) -> None:
        if not 0 < opacity <= 1:
            raise ValueError(f'opacity must be in (0, 1], got {opacity}')
        cfg = self._read_config(config, cfg_options, optimize, compile)
        self.opacity = opacity
        self.with_labels = with_labels
        self.save_label_ids = save_label_ids
        with warnings.catch_warnings():
            # Visualizer without storage backend: none is needed.
            warnings.simplefilter('ignore')
            super().__init__(cfg, checkpoint, device=device)
        self.show_progress = False

    def _init_model(self, cfg, weights, device) -> torch.nn.Module:
        return self._build_model(weights, device)

    def _prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = revert_sync_batchnorm(model)  # no sync needed to predict
        model.dataset_meta = complete_seg_meta(
            model.dataset_meta, model.num_classes
        )
        model.cfg.test_pipeline = array_pipeline(model.cfg)
        return model

    def _init_pipeline(self, cfg) -> Compose:
        return Compose(array_pipeline(cfg))

    def configure_slide(
        self, crop_size: Sequence[int], stride: Sequence[int] | None = None
    ) -> None:
        """Switch to sliding-window inference (mmseg's ``mode='slide'``).

        Args:
            crop_size (Sequence[int]): Window (height, width).
            stride (Sequence[int], optional): Step, at most the window.
                Defaults to 2/3 of it, as mmseg's Cityscapes configs.

        Raises:
            ValueError: A size is not positive or a step exceeds the
                window (pixels between windows would get no prediction).
        """
        crop = tuple(int(v) for v in crop_size)
        if stride is None:
            stride = [max(1, round(v * 2 / 3)) for v in crop]
        step = tuple(int(v) for v in stride)
        if len(crop) != 2 or len(step) != 2 or min(crop + step) < 1:
            raise ValueError(
                f'slide mode: crop size {crop} and stride {step} must be '
                'two positive numbers each (height width)'
            )
        if step[0] > crop[0] or step[1] > crop[1]:
            raise ValueError(
                f'slide mode: stride {step} must not exceed the crop size '
                f'{crop}, or pixels between windows get no prediction'
            )
        self.model.test_cfg = ConfigDict(
            mode='slide', crop_size=crop, stride=step
        )

    def predict(self, images: list[np.ndarray]) -> list[SegDataSample]:
        """Segment BGR uint8 images; consecutive equal-sized ones share a
        forward pass.

        Returns:
            list[SegDataSample]: One per image with ``pred_sem_seg`` (1, H,
            W) and ``seg_logits``, at the image's size.
        """
        results, run = [], []
        for image in [*images, None]:
            if run and (image is None or image.shape != run[0].shape):
                out = self(run, return_datasamples=True, batch_size=len(run))
                results += out if isinstance(out, list) else [out]
                run = []
            run.append(image)
        return results

    def predict_items(self, items: list[InputItem]) -> list[SegDataSample]:
        """:meth:`predict` on the items' images."""
        return self.predict([item.image for item in items])

    def draw(self, image: np.ndarray, result) -> dict:
        """The outputs of one prediction, with mmseg's visualizer.

        Args:
            image (np.ndarray): The input, BGR uint8.
            result (SegDataSample | np.ndarray): A prediction or a label
                map of the image's size.

        Returns:
            dict: ``masks`` (palette colour per pixel, black for ids
            without a class), ``overlays`` and, with ``save_label_ids``,
            ``label_ids``; BGR images of the input's size.
        """
        labels = label_map(result)
        if labels.shape != image.shape[:2]:
            raise ValueError(
                f'prediction size {labels.shape} differs from the image '
                f'size {image.shape[:2]}'
            )
        # Numpy labels: mmseg indexes with torch masks, which a 1x1 image
        # turns into a scalar index (IndexError).
        sample = SegDataSample(
            pred_sem_seg=PixelData(data=labels[None].astype(np.int64))
        )
        meta = self.model.dataset_meta
        self.visualizer.set_dataset_meta(
            classes=meta['classes'], palette=meta['palette']
        )
        rgb = np.ascontiguousarray(image[..., ::-1])

        def render(alpha: float, labelled: bool) -> np.ndarray:
            self.visualizer.alpha = alpha
            self.visualizer.add_datasample(
                'pred', rgb, sample, draw_gt=False, with_labels=labelled
            )
            return np.ascontiguousarray(self.visualizer.get_image()[..., ::-1])

        mask = render(1.0, False)
        if self.with_labels:
            overlay = render(self.opacity, True)
        else:  # the visualizer's blend, without a second drawing pass
            alpha = self.opacity
            overlay = cv2.addWeighted(image, 1 - alpha, mask, alpha, 0)
        outputs = dict(masks=mask, overlays=overlay)
        if self.save_label_ids:
            outputs['label_ids'] = labels
        return outputs
