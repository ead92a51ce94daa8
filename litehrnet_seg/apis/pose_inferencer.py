"""Top-down pose inferencer on mmengine's ``BaseInferencer``.

Each input is an image (path or BGR array) with its person boxes (the
whole image when none are given); all boxes of one image share a forward
pass. The model comes from the project's strict
:func:`~litehrnet_seg.checkpoint.build_model`, whose dataset metainfo falls
back to the config's (e.g. a converted mmpose 0.x checkpoint without
``dataset_meta``), and is optimised by default.

Example::

    >>> inferencer = PoseInferencer(CONFIG, CHECKPOINT)
    >>> people = inferencer('person.jpg', bboxes=[[[10, 20, 110, 220]]])
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.infer import BaseInferencer

from ..checkpoint import build_model
from ..visualization import draw_skeleton
from .fast_path import optimize_for_inference
from .inputs import read_image
from .seg_inferencer import array_pipeline


def check_boxes(boxes, where: str) -> np.ndarray:
    """Person boxes as an (N, 4) float32 xyxy array.

    Args:
        boxes (array-like): One ``[x1, y1, x2, y2]`` box or a list of them.
        where (str): Where they come from, for messages.

    Raises:
        ValueError: Not 4 numbers per box, or an empty or reversed box
            (x2 <= x1 or y2 <= y1), named.
    """
    try:
        array = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f'{where}: boxes must be numbers ({error})') from None
    if array.shape == (4,):
        array = array[None]
    if array.size and (array.ndim != 2 or array.shape[1] != 4):
        raise ValueError(
            f'{where}: expected [x1, y1, x2, y2] boxes, got shape '
            f'{array.shape}'
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
    """Read a boxes json and return a lookup: source -> its boxes.

    The json is a list of ``[x1, y1, x2, y2]`` pixel boxes for every input,
    or ``{"file name": [boxes]}`` (a video's frames by the video's name;
    inputs not listed: None, the whole image; ``[]``: no person).

    Args:
        path (str): The json file.

    Raises:
        ValueError: Missing file, bad json or a bad box (named).
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f'boxes file {path} does not exist') from None
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
        for key in (video.name, str(video), video.stem):
            if key in table:
                return table[key]
        return None

    return lookup


class PoseInferencer(BaseInferencer):
    """Top-down pose inference: keypoints per person box.

    Args:
        config (str | Path): Pose config.
        checkpoint (str, optional): Checkpoint, loaded strictly; None keeps
            random weights (smoke tests).
        device (str): Torch device. Defaults to 'cpu'.
        optimize (bool): Use :func:`optimize_for_inference`. Defaults to
            True.
        compile (bool): Also ``torch.compile``. Defaults to False.
        cfg_options (dict, optional): Overrides merged into the config.
        score_thr (float): Keypoints scoring below it are not drawn.

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
    ) -> None:
        self.build_args = dict(
            config=str(config), cfg_options=cfg_options, optimize=optimize
        )
        self.compile = compile
        self.score_thr = score_thr
        cfg = Config.fromfile(str(config))
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        super().__init__(
            cfg, checkpoint, device, cfg.get('default_scope', 'mmseg'), False
        )

    def _init_model(self, cfg, weights, device) -> torch.nn.Module:
        """The project's strict builder, then the fast path."""
        args = self.build_args
        model = build_model(
            args['config'], weights, cfg_options=args['cfg_options']
        )
        if args['optimize']:
            model = optimize_for_inference(model, self.compile)
        return model.to(device).eval()

    def _init_pipeline(self, cfg) -> Compose:
        return Compose(array_pipeline(cfg))

    def _init_visualizer(self, cfg) -> None:
        return None  # skeletons are drawn by draw_skeleton

    def preprocess(self, inputs: list, batch_size: int = 1, bboxes=None):
        """One batch per image: all its boxes.

        Args:
            inputs (list): Image paths or BGR uint8 arrays.
            batch_size (int): Unused (an image's boxes form its batch).
            bboxes (list, optional): Per image, its boxes (see
                :func:`check_boxes`) or None for the whole image.

        Yields:
            dict | None: The collated boxes; None for an image without
            boxes.
        """
        bboxes = bboxes if bboxes is not None else [None] * len(inputs)
        for image, boxes in zip(inputs, bboxes, strict=True):
            if not isinstance(image, np.ndarray):
                image = read_image(image)
            height, width = image.shape[:2]
            if boxes is None:
                boxes = [0, 0, width, height]
            boxes = check_boxes(boxes, f'boxes of a {width}x{height} image')
            items = [
                self.pipeline(
                    dict(
                        img=image,
                        bbox=box[None],
                        bbox_score=np.ones(1, np.float32),
                        id=i,
                        img_id=0,
                        category_id=1,
                        **self.model.dataset_meta,
                    )
                )
                for i, box in enumerate(boxes)
            ]
            yield self.collate_fn(items) if items else None

    @torch.no_grad()
    def forward(self, inputs: dict | None) -> list:
        """One entry per image: the samples of its boxes."""
        return [self.model.test_step(inputs) if inputs else []]

    def visualize(
        self, inputs: list, preds: list, return_vis: bool = False
    ) -> list | None:
        """Skeleton overlays (BGR) of each image when ``return_vis``."""
        if not return_vis:
            return None
        return [
            self.draw(
                image if isinstance(image, np.ndarray) else read_image(image),
                samples,
            )['overlays']
            for image, samples in zip(inputs, preds, strict=True)
        ]

    def postprocess(
        self, preds: list, visualization, return_datasample: bool = False
    ) -> dict | list:
        """Per image, the people (box, keypoints, scores) or the samples.

        Returns:
            dict | list: ``predictions`` (one list of people per image) and
            ``visualization``; the per-image samples with
            ``return_datasample``.
        """
        if return_datasample:
            return preds
        return dict(
            predictions=[people_of(samples) for samples in preds],
            visualization=visualization,
        )

    def predict(self, images: list, bboxes: list | None = None) -> list:
        """Per image, its list of ``PoseDataSample`` (one per box)."""
        return self(images, return_datasamples=True, bboxes=bboxes)

    def draw(self, image: np.ndarray, samples: list) -> dict:
        """``overlays`` (skeletons on the image) and ``keypoints`` (the
        people, for json) of one image's predictions."""
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


def people_of(samples: list) -> list[dict]:
    """The people of one image's samples: ``bbox``, ``keypoints`` (x, y
    pixels) and ``keypoint_scores``, as plain lists."""
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
