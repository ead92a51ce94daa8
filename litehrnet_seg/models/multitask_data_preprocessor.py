"""Data preprocessor dispatching each batch to its task's preprocessor."""

from collections.abc import Mapping

import torch.nn as nn
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS

from ..structures.task import TASKS, infer_task


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
