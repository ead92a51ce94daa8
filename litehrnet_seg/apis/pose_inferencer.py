"""Top-down pose inferencer on mmengine's ``BaseInferencer``.

Each input image is run with its person boxes (the whole image when none
are given), all in one batch. The model comes from the project's strict
:func:`~litehrnet_seg.checkpoint.build_model` (dataset metainfo from the
config when the checkpoint has none, e.g. a converted mmpose 0.x file),
optimised by default.

Example::

    >>> inferencer = PoseInferencer(CONFIG, CHECKPOINT)
    >>> people = inferencer('person.jpg', bboxes=[[[10, 20, 110, 220]]])
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.infer import BaseInferencer

from ..visualization import draw_skeleton
from .fast_path import FastPathModelMixin
from .inputs import InputItem, read_image
from .seg_inferencer import array_pipeline


def check_boxes(boxes, where: str) -> np.ndarray:
    """Person boxes ``[x1, y1, x2, y2]`` (one or a list) as (N, 4) float32.

    Raises:
        ValueError: Not 4 numbers per box, or an empty or reversed box;
            the message says ``where`` and the box.
    """
    try:
        array = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f'{where}: boxes must be numbers ({error})') from None
    array = array[None] if array.shape == (4,) else array
    if array.size and (array.ndim != 2 or array.shape[1] != 4):
        raise ValueError(
            f'{where}: expected [x1, y1, x2, y2] boxes, got {array.shape}'
        )
    array = array.reshape(-1, 4)
    bad = (array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1])
    if bad.any():
        raise ValueError(
            f'{where}: box {array[bad][0].tolist()} is empty or reversed '
            '(expected x2 > x1 and y2 > y1)'
        )
    return array


def load_boxes(path: str) -> Callable[[str], np.ndarray | None]:
    """Read a boxes json: a list of boxes for every input, or ``{"file
    name": boxes}`` (a video's frames by the video's name; unlisted: None,
    the whole image; ``[]``: nobody). Returns a lookup by item source.

    Raises:
        ValueError: Missing file, bad json or a bad box (named).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'boxes file {path}: {error}') from None
    if not isinstance(data, dict):
        boxes = check_boxes(data, f'boxes file {path}')
        return lambda source: boxes
    table = {
        k: check_boxes(v, f'boxes file {path}, entry {k!r}')
        for k, v in data.items()
    }

    def lookup(source: str) -> np.ndarray | None:
        video = Path(source.split(' frame ')[0])
        keys = (video.name, str(video), video.stem)
        return next((table[k] for k in keys if k in table), None)

    return lookup


def people_of(samples: list) -> list[dict]:
    """``bbox``, ``keypoints`` (x, y pixels) and ``keypoint_scores`` of
    each person, as lists."""
    people = []
    for sample in samples:
        pred = sample.pred_instances
        for i, points in enumerate(pred.keypoints):
            box = pred.get('bboxes')
            people.append(
                dict(
                    bbox=None if box is None else np.asarray(box[i]).tolist(),
                    keypoints=np.asarray(points).tolist(),
                    keypoint_scores=np.asarray(
                        pred.keypoint_scores[i]
                    ).tolist(),
                )
            )
    return people


class PoseInferencer(FastPathModelMixin, BaseInferencer):
    """Top-down pose inference: keypoints per person box.

    Args:
        config (str | Path): Pose config.
        checkpoint (str, optional): Loaded strictly; None: random weights.
        device (str): Torch device. Defaults to 'cpu'.
        optimize (bool): Use :func:`optimize_for_inference`. Defaults to
            True.
        compile (bool): Also ``torch.compile``. Defaults to False.
        cfg_options (dict, optional): Overrides merged into the config.
        score_thr (float): Keypoints scoring below it are not drawn.
        boxes (Callable, optional): Item source -> its boxes, for
            :meth:`predict_items` (e.g. :func:`load_boxes`).

    Raises:
        CheckpointError: The checkpoint cannot be read (names it).
        CheckpointMismatchError: It does not fit the config's model.
    """

    preprocess_kwargs = {'bboxes'}
    visualize_kwargs = {'return_vis'}

    def __init__(
        self,
        config: str | Path,
        checkpoint: str | None = None,
        *,
        device: str = 'cpu',
        optimize: bool = True,
        compile: bool = False,
        cfg_options: dict | None = None,
        score_thr: float = 0.3,
        boxes: Callable[[str], np.ndarray | None] | None = None,
    ) -> None:
        cfg = self._read_config(config, cfg_options, optimize, compile)
        self.score_thr = score_thr
        self.boxes = boxes or (lambda source: None)
        scope = cfg.get('default_scope', 'mmseg')
        super().__init__(cfg, checkpoint, device, scope, show_progress=False)

    def _init_model(self, cfg, weights, device) -> torch.nn.Module:
        return self._build_model(weights, device)

    def _init_pipeline(self, cfg) -> Compose:
        return Compose(array_pipeline(cfg))

    def _init_visualizer(self, cfg) -> None:
        return None  # skeletons come from draw_skeleton

    def preprocess(self, inputs: list, batch_size: int = 1, bboxes=None):
        """Yield one batch per image, its boxes (None: no boxes).

        Args:
            inputs (list): Image paths or BGR uint8 arrays.
            batch_size (int): Unused: an image's boxes form its batch.
            bboxes (list, optional): Per image, boxes or None (the whole
                image).
        """
        for image, boxes in zip(
            inputs, bboxes or [None] * len(inputs), strict=True
        ):
            if not isinstance(image, np.ndarray):
                image = read_image(image)
            height, width = image.shape[:2]
            if boxes is None:
                boxes = [0, 0, width, height]
            boxes = check_boxes(boxes, f'boxes of a {width}x{height} image')
            base = dict(
                img=image,
                bbox_score=np.ones(1, np.float32),
                img_id=0,
                category_id=1,
                **self.model.dataset_meta,
            )
            items = [
                self.pipeline(dict(base, bbox=box[None], id=i))
                for i, box in enumerate(boxes)
            ]
            yield self.collate_fn(items) if items else None

    @torch.no_grad()
    def forward(self, inputs: dict | None) -> list:
        """One entry per image: the samples of its boxes."""
        return [self.model.test_step(inputs) if inputs else []]

    def visualize(self, inputs: list, preds: list, return_vis=False):
        """Skeleton overlays (BGR) of each image when ``return_vis``."""
        if not return_vis:
            return None
        images = [
            x if isinstance(x, np.ndarray) else read_image(x) for x in inputs
        ]
        return [
            self.draw(image, samples)['overlays']
            for image, samples in zip(images, preds, strict=True)
        ]

    def postprocess(self, preds, visualization, return_datasample=False):
        """Per image: its ``PoseDataSample`` list (``return_datasample``),
        else ``predictions`` (people, see :func:`people_of`) and
        ``visualization``."""
        if return_datasample:
            return preds
        people = [people_of(samples) for samples in preds]
        return dict(predictions=people, visualization=visualization)

    def predict(self, images: list, bboxes: list | None = None) -> list:
        """Per image, its ``PoseDataSample`` list (one per box)."""
        return self(images, return_datasamples=True, bboxes=bboxes)

    def predict_items(self, items: list[InputItem]) -> list:
        """:meth:`predict` on items, boxes from ``boxes(item.source)``."""
        boxes = [self.boxes(item.source) for item in items]
        return self.predict([item.image for item in items], boxes)

    def draw(self, image: np.ndarray, samples: list) -> dict:
        """``overlays`` (skeletons) and ``keypoints`` (people, for json)."""
        people = people_of(samples)
        overlay = image.copy()
        if people:
            overlay = draw_skeleton(
                image,
                np.array([p['keypoints'] for p in people]),
                np.array([p['keypoint_scores'] for p in people]),
                self.model.dataset_meta.get('skeleton_links', []),
                self.score_thr,
            )
        return dict(overlays=overlay, keypoints=dict(people=people))
