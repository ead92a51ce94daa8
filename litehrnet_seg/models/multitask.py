"""Joint segmentation + pose training on one Lite-HRNet core.

One ``LiteHRNet`` backbone (https://arxiv.org/abs/2104.06403) feeds an mmseg
segmentation head (``decode_head``, all four IterativeHead outputs) and a
top-down heatmap pose head (``head``, the stride-4 output). Every batch
carries ONE task, recognised from its data samples' type (``SegDataSample``
-> ``'seg'``, ``PoseDataSample`` -> ``'pose'``), so stock ``tools/train.py``
drives it with mmengine's ordinary loops:

- ``MultiTaskDataset`` concatenates one dataset per task;
- ``TaskBatchSampler`` (training) yields batches that come from one task
  each, with per-task batch sizes and an exact, deterministic task ratio
  (smooth weighted round robin);
- ``TaskSequentialBatchSampler`` (validation/test) walks every task's
  dataset once, task after task;
- ``TaskFilteredMetric`` wraps a metric (``IoUMetric``, ``CocoMetric``) so
  that it only sees its task's samples: one evaluator list reports ``mIoU``
  and ``coco/AP`` in the same validation run.

State-dict keys (``backbone.*``, ``decode_head.*``, ``head.*``) are those of
the single-task ``EncoderDecoder`` and ``TopdownPoseEstimator``, so a
multi-task checkpoint loads into either (filtered by prefix).
"""

import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.dataset import BaseDataset
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch.utils.data import Dataset, Sampler

from ..structures import PoseDataSample
from .pose.topdown_pose_estimator import predict_topdown

TASKS = ('seg', 'pose')
_SAMPLE_TYPES = dict(seg=SegDataSample, pose=PoseDataSample)


def infer_task(data_samples: Sequence | None) -> str:
    """The task of a batch from its data samples' type.

    Args:
        data_samples (Sequence): ``SegDataSample`` (-> ``'seg'``) or
            ``PoseDataSample`` (-> ``'pose'``) objects, all of one type.

    Returns:
        str: ``'seg'`` or ``'pose'``.
    """
    if not data_samples:
        raise ValueError('cannot infer the task of a batch without samples')
    tasks = set()
    for sample in data_samples:
        for task, cls in _SAMPLE_TYPES.items():
            if isinstance(sample, cls):
                tasks.add(task)
                break
        else:
            raise TypeError(
                f'cannot infer the task from a {type(sample).__name__}; '
                'expected SegDataSample or PoseDataSample'
            )
    if len(tasks) != 1:
        raise ValueError(
            f'a batch must carry one task, got samples of {sorted(tasks)} '
            '(use TaskBatchSampler / TaskSequentialBatchSampler)'
        )
    return tasks.pop()


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


@MODELS.register_module()
class MultiTaskDataPreprocessor(BaseDataPreprocessor):
    """Dispatch each batch to its task's data preprocessor.

    Args:
        preprocessors (dict): Task -> preprocessor config, e.g.
            ``seg=dict(type='SegDataPreProcessor', ...)`` (pads to the crop
            size / size divisor) and ``pose=dict(type='ImgDataPreprocessor',
            ...)``.
    """

    def __init__(self, preprocessors: Mapping[str, dict]) -> None:
        super().__init__()
        unknown = set(preprocessors) - set(TASKS)
        if unknown:
            raise ValueError(f'unknown tasks {sorted(unknown)}; use {TASKS}')
        self.preprocessors = nn.ModuleDict(
            {task: MODELS.build(cfg) for task, cfg in preprocessors.items()}
        )

    def forward(self, data: dict, training: bool = False) -> dict:
        task = infer_task(data.get('data_samples'))
        if task not in self.preprocessors:
            raise KeyError(f'no data preprocessor for task {task!r}')
        return self.preprocessors[task](data, training)


@MODELS.register_module()
class SegPoseMultiTaskModel(BaseModel):
    """Lite-HRNet core shared by semantic segmentation and top-down pose.

    Attribute names match the single-task models: ``backbone`` and
    ``decode_head`` as mmseg's ``EncoderDecoder``, ``backbone`` and ``head``
    as ``TopdownPoseEstimator``. Segmentation inference reuses mmseg's own
    ``EncoderDecoder`` code (whole/slide inference, ``postprocess_result``)
    so predictions are those of the single-task model with the same weights.
    Paper: https://arxiv.org/abs/2104.06403.

    Args:
        backbone (dict): ``LiteHRNet`` config with ``out_indices=(0, 1, 2,
            3)`` (all four IterativeHead outputs).
        decode_head (dict): mmseg decode head (e.g. ``FCNHead`` with
            ``resize_concat`` over ``in_index=(0, 1, 2, 3)``).
        head (dict): Pose ``HeatmapHead`` (reads ``feats[0]``).
        loss_weights (dict): Task -> weight applied to that task's losses.
            Defaults to 1.0 each.
        train_cfg (dict, optional): Segmentation train config (passed to
            ``decode_head.loss``).
        test_cfg (dict, optional): ``seg=dict(mode='whole')`` (mmseg test
            config) and ``pose=dict(flip_test=True, shift_heatmap=True)``.
        data_preprocessor (dict, optional): ``MultiTaskDataPreprocessor``.
        init_cfg (dict, optional): Initialization config.
    """

    # mmseg's inference path, verbatim (needs test_cfg, decode_head,
    # align_corners, out_channels, extract_feat).
    encode_decode = EncoderDecoder.encode_decode
    whole_inference = EncoderDecoder.whole_inference
    slide_inference = EncoderDecoder.slide_inference
    inference = EncoderDecoder.inference
    postprocess_result = BaseSegmentor.postprocess_result

    def __init__(
        self,
        backbone: dict,
        decode_head: dict,
        head: dict,
        loss_weights: Mapping[str, float] | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.head = MODELS.build(head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        weights = dict(seg=1.0, pose=1.0)
        weights.update(loss_weights or {})
        unknown = set(weights) - set(TASKS)
        if unknown:
            raise ValueError(f'unknown tasks {sorted(unknown)}; use {TASKS}')
        self.loss_weights = weights
        test_cfg = dict(test_cfg or {})
        self.train_cfg = ConfigDict(train_cfg or {})
        # `test_cfg` is the segmentation one, as mmseg's borrowed code reads.
        self.test_cfg = ConfigDict(test_cfg.get('seg', dict(mode='whole')))
        self.pose_test_cfg = dict(test_cfg.get('pose', {}))

    @property
    def with_neck(self) -> bool:
        return False

    @property
    def with_auxiliary_head(self) -> bool:
        return False

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor]:
        """All backbone outputs (IterativeHead, strides 4, 8, 16, 32)."""
        return self.backbone(inputs)

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: list | None = None,
        mode: str = 'tensor',
        task: str | None = None,
    ):
        """mmengine's three modes, for the task of the batch.

        Args:
            inputs (Tensor): Preprocessed images (B, 3, H, W).
            data_samples (list, optional): ``SegDataSample`` or
                ``PoseDataSample`` objects; they decide the task.
            mode (str): 'loss' -> dict of prefixed, weighted losses
                (``seg.decode.loss_ce``, ``pose.loss_kpt``), 'predict' ->
                data samples with predictions, 'tensor' -> raw head output
                (seg logits or heatmaps).
            task (str, optional): Overrides the task, e.g. for 'tensor'
                without data samples. In 'tensor' mode with neither, a dict
                of both outputs is returned.
        """
        if task is None and data_samples:
            task = infer_task(data_samples)
        if task is not None and task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        if mode == 'tensor':
            feats = self.extract_feat(inputs)
            outs = {}
            if task in (None, 'seg'):
                outs['seg'] = self.decode_head.forward(feats)
            if task in (None, 'pose'):
                outs['pose'] = self.head.forward(feats)
            return outs[task] if task else outs
        if task is None:
            raise ValueError(f'mode {mode!r} needs data samples or `task`')
        if mode == 'loss':
            return self.loss(inputs, data_samples, task)
        if mode == 'predict':
            if task == 'seg':
                return self.predict_seg(inputs, data_samples)
            return self.predict_pose(inputs, data_samples)
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}"
        )

    def loss(
        self, inputs: torch.Tensor, data_samples: list, task: str
    ) -> dict:
        """Losses of one task, prefixed with the task and weighted."""
        feats = self.extract_feat(inputs)
        if task == 'seg':
            losses = add_prefix(
                self.decode_head.loss(feats, data_samples, self.train_cfg),
                'decode',
            )
        else:
            losses = self.head.loss(feats, data_samples)
        weight = self.loss_weights[task]
        if weight != 1.0:
            losses = {
                k: (v * weight if 'loss' in k else v)
                for k, v in losses.items()
            }
        return add_prefix(losses, task)

    def predict_seg(self, inputs: torch.Tensor, data_samples: list) -> list:
        """``EncoderDecoder.predict``: ``pred_sem_seg`` and ``seg_logits``."""
        batch_img_metas = [sample.metainfo for sample in data_samples]
        seg_logits = self.inference(inputs, batch_img_metas)
        results = self.postprocess_result(seg_logits, data_samples)
        for sample in results:
            sample.set_metainfo(dict(task='seg'))
        return results

    def predict_pose(self, inputs: torch.Tensor, data_samples: list) -> list:
        """``TopdownPoseEstimator.predict``: keypoints (flip test)."""
        results = predict_topdown(
            self.extract_feat,
            self.head,
            inputs,
            data_samples,
            self.pose_test_cfg,
        )
        for sample in results:
            sample.set_metainfo(dict(task='pose'))
        return results


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


@DATASETS.register_module()
class MultiTaskDataset(Dataset):
    """One dataset per task behind one index space.

    Indices ``[offsets[t], offsets[t] + len(datasets[t]))`` belong to task
    ``t`` (in the order given). Use with ``TaskBatchSampler`` /
    ``TaskSequentialBatchSampler`` so that a batch holds one task.

    Args:
        datasets (dict): Task (``'seg'``, ``'pose'``) -> dataset config or
            dataset.
    """

    def __init__(self, datasets: Mapping[str, dict | Dataset]) -> None:
        unknown = set(datasets) - set(TASKS)
        if unknown or not datasets:
            raise ValueError(
                f'datasets must be keyed by tasks {TASKS}, got '
                f'{sorted(datasets)}'
            )
        self.datasets: dict[str, Dataset] = {}
        for task, cfg in datasets.items():
            ds = DATASETS.build(cfg) if isinstance(cfg, Mapping) else cfg
            if isinstance(ds, BaseDataset):
                ds.full_init()
            if len(ds) == 0:
                raise ValueError(f'the {task!r} dataset is empty')
            self.datasets[task] = ds
        self.tasks = tuple(self.datasets)
        self.offsets: dict[str, int] = {}
        start = 0
        for task in self.tasks:
            self.offsets[task] = start
            start += len(self.datasets[task])
        self._len = start

    @property
    def metainfo(self) -> dict:
        """Task -> that dataset's metainfo (``TaskFilteredMetric`` picks
        its own)."""
        return {
            task: dict(getattr(ds, 'metainfo', {}))
            for task, ds in self.datasets.items()
        }

    def task_range(self, task: str) -> range:
        start = self.offsets[task]
        return range(start, start + len(self.datasets[task]))

    def locate(self, idx: int) -> tuple[str, int]:
        """Global index -> (task, index in that task's dataset)."""
        if idx < 0:
            idx += self._len
        for task in reversed(self.tasks):
            if idx >= self.offsets[task]:
                local = idx - self.offsets[task]
                if local >= len(self.datasets[task]):
                    break
                return task, local
        raise IndexError(f'index {idx} out of range ({self._len})')

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, idx: int):
        task, local = self.locate(idx)
        return self.datasets[task][local]


def _task_dataset(sampler: Sampler) -> MultiTaskDataset:
    dataset = getattr(sampler, 'dataset', None)
    if not isinstance(dataset, MultiTaskDataset):
        raise TypeError(
            'task batch samplers need a MultiTaskDataset (reached through '
            f'the sampler), got {type(dataset).__name__}'
        )
    return dataset


def _batch_sizes(
    dataset: MultiTaskDataset, default: int, sizes: Mapping | None
) -> dict[str, int]:
    sizes = dict(sizes or {})
    unknown = set(sizes) - set(dataset.tasks)
    if unknown:
        raise ValueError(f'batch_sizes for unknown tasks {sorted(unknown)}')
    out = {t: int(sizes.get(t, default)) for t in dataset.tasks}
    if any(b < 1 for b in out.values()):
        raise ValueError(f'batch sizes must be >= 1, got {out}')
    return out


@DATA_SAMPLERS.register_module()
class TaskBatchSampler(Sampler):
    """Training batches from one task each, in a fixed task ratio.

    Steps are assigned to tasks by smooth weighted round robin, so
    ``ratio=dict(seg=1, pose=1)`` alternates seg, pose, seg, ... and
    ``dict(seg=2, pose=1)`` gives seg, pose, seg, seg, pose, seg, ... on
    every rank alike (all ranks run the same task in a step, as DDP needs).
    Within a task, indices come from a seeded permutation, reshuffled each
    pass; with several ranks each takes its share of a global batch of
    ``batch_size * world_size``. Endless (for ``IterBasedTrainLoop``, like
    ``InfiniteSampler``); ``len()`` is the number of steps until every task
    has seen all its samples at least once.

    Built by mmengine's ``Runner.build_dataloader`` from
    ``train_dataloader.batch_sampler`` with the dataloader's ``sampler``
    (any sampler over the ``MultiTaskDataset``; only its dataset and seed
    are used) and ``batch_size`` (default for tasks not in
    ``batch_sizes``).

    Args:
        sampler (Sampler): Sampler over a ``MultiTaskDataset``.
        batch_size (int): Default per-task batch size. Defaults to 1.
        batch_sizes (dict, optional): Task -> batch size (per rank).
        ratio (dict, optional): Task -> relative number of steps
            (non-negative; 0 disables a task). Defaults to 1 each.
        shuffle (bool): Shuffle within tasks. Defaults to True.
        seed (int, optional): Random seed; defaults to the sampler's.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 1,
        batch_sizes: Mapping[str, int] | None = None,
        ratio: Mapping[str, float] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        self.sampler = sampler
        self.dataset = _task_dataset(sampler)
        self.batch_sizes = _batch_sizes(self.dataset, batch_size, batch_sizes)
        ratio = dict(ratio or {})
        unknown = set(ratio) - set(self.dataset.tasks)
        if unknown:
            raise ValueError(f'ratio for unknown tasks {sorted(unknown)}')
        self.ratio = {t: float(ratio.get(t, 1)) for t in self.dataset.tasks}
        if any(r < 0 for r in self.ratio.values()) or not any(
            self.ratio.values()
        ):
            raise ValueError(
                f'ratio must be >= 0, one at least > 0: {self.ratio}'
            )
        self.shuffle = shuffle
        if seed is None:
            seed = getattr(sampler, 'seed', 0) or 0
        self.seed = int(seed)
        self.rank, self.world_size = get_dist_info()
        self._len = self._epoch_length()

    def _epoch_length(self) -> int:
        total = sum(self.ratio.values())
        steps = 1
        for task, r in self.ratio.items():
            if r == 0:
                continue
            global_bs = self.batch_sizes[task] * self.world_size
            n = -(-len(self.dataset.datasets[task]) // global_bs)
            steps = max(steps, int(np.ceil(n * total / r - 1e-9)))
        return steps

    def _tasks(self) -> Iterator[str]:
        """Endless task order: smooth weighted round robin."""
        total = sum(self.ratio.values())
        active = [t for t in self.ratio if self.ratio[t] > 0]
        current = dict.fromkeys(self.ratio, 0.0)
        while True:
            for task, r in self.ratio.items():
                current[task] += r
            task = max(active, key=lambda t: current[t])
            current[task] -= total
            yield task

    def task_schedule(self, steps: int) -> list[str]:
        """The task of each of the first ``steps`` steps (deterministic)."""
        return list(itertools.islice(self._tasks(), steps))

    def _stream(self, task: str) -> Iterator[int]:
        """Endless task-local indices, reshuffled every pass."""
        n = len(self.dataset.datasets[task])
        g = torch.Generator()
        g.manual_seed(self.seed + self.dataset.tasks.index(task))
        while True:
            if self.shuffle:
                yield from torch.randperm(n, generator=g).tolist()
            else:
                yield from range(n)

    def __iter__(self) -> Iterator[list[int]]:
        # Endless, like mmengine's InfiniteSampler: re-creating the
        # dataloader iterator at each "epoch" costs a 2 s sleep in
        # IterBasedTrainLoop, and the epochs here are a couple of steps.
        streams = {t: self._stream(t) for t in self.dataset.tasks}
        for task in self._tasks():
            bs = self.batch_sizes[task]
            stream = streams[task]
            global_batch = [next(stream) for _ in range(bs * self.world_size)]
            offset = self.dataset.offsets[task]
            yield [
                offset + i for i in global_batch[self.rank :: self.world_size]
            ]

    def __len__(self) -> int:
        """Steps until every task has seen all its samples once."""
        return self._len

    def set_epoch(self, epoch: int) -> None:
        """Unused (endless sampler), for ``DistSamplerSeedHook``."""


@DATA_SAMPLERS.register_module()
class TaskSequentialBatchSampler(Sampler):
    """Validation/test batches: every task's samples once, task by task.

    Each batch holds one task; with several ranks each takes every
    ``world_size``-th sample of a task (no padding, like ``DefaultSampler``
    with ``round_up=False``).

    Args:
        sampler (Sampler): Sampler over a ``MultiTaskDataset``.
        batch_size (int): Default per-task batch size. Defaults to 1.
        batch_sizes (dict, optional): Task -> batch size.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 1,
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.sampler = sampler
        self.dataset = _task_dataset(sampler)
        self.batch_sizes = _batch_sizes(self.dataset, batch_size, batch_sizes)
        self.rank, self.world_size = get_dist_info()

    def _indices(self, task: str) -> list[int]:
        return list(self.dataset.task_range(task))[
            self.rank :: self.world_size
        ]

    def __iter__(self) -> Iterator[list[int]]:
        for task in self.dataset.tasks:
            idx = self._indices(task)
            bs = self.batch_sizes[task]
            for start in range(0, len(idx), bs):
                yield idx[start : start + bs]

    def __len__(self) -> int:
        return sum(
            -(-len(self._indices(t)) // self.batch_sizes[t])
            for t in self.dataset.tasks
        )


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


@METRICS.register_module()
class TaskFilteredMetric(BaseMetric):
    """Run a metric on one task's samples of a multi-task evaluation.

    Samples are routed by the ``task`` metainfo the multi-task model writes
    (``'seg'``/``'pose'``); the dataset metainfo of a ``MultiTaskDataset``
    (task -> metainfo) is narrowed to the task's. Metric names are the
    wrapped metric's (``mIoU``, ``coco/AP``).

    Args:
        metric (dict): Wrapped metric config, e.g. ``dict(type='IoUMetric',
            iou_metrics=['mIoU'])``.
        task (str): ``'seg'`` or ``'pose'``.
    """

    def __init__(self, metric: dict, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        self.task = task
        self.metric = METRICS.build(metric)
        super().__init__(
            collect_device=self.metric.collect_device,
            prefix=self.metric.prefix,
        )

    @property
    def dataset_meta(self) -> dict | None:
        return self.metric.dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict | None) -> None:
        if dataset_meta is None:
            return
        if isinstance(dataset_meta.get(self.task), Mapping):
            dataset_meta = dataset_meta[self.task]
        self.metric.dataset_meta = dataset_meta

    def _is_mine(self, sample: Mapping) -> bool:
        task = sample.get('task')
        if task is not None:
            return task == self.task
        key = 'pred_sem_seg' if self.task == 'seg' else 'pred_instances'
        return key in sample

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        mine = [s for s in data_samples if self._is_mine(s)]
        if mine:
            self.metric.process(data_batch, mine)

    def compute_metrics(self, results: list) -> dict:
        return self.metric.compute_metrics(results)

    def evaluate(self, size: int) -> dict:
        # The wrapped metric holds the results; `size` (the whole
        # multi-task dataset) only bounds them.
        return self.metric.evaluate(size)
