from .task_batch_sampler import TaskBatchSampler, TaskSequentialBatchSampler

__all__ = ['TaskBatchSampler', 'TaskSequentialBatchSampler']
