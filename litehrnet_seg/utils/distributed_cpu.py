"""Run GPU-oriented configs on CPUs: gloo backend, SyncBN -> BN."""

import datetime
import logging

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

# Norm types of the registries that need a CUDA-aware process group.
SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'SyncBatchNorm')


def _replace_sync_norms(node) -> int:
    """Turn every ``type='SyncBN'`` dict under ``node`` into BN, in place.

    Returns:
        int: How many were replaced.
    """
    count = 0
    if isinstance(node, dict):
        if node.get('type') in SYNC_NORMS:
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_norms(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_norms(value)
    return count


def prepare_cpu_distributed(cfg: Config, launcher: str) -> Config:
    """Make a distributed config runnable when no GPU is present.

    Without CUDA, a multi-process run (``launcher != 'none'``) needs the
    gloo backend, and PyTorch's SyncBatchNorm cannot synchronise CPU
    tensors (it raises at the first training step). Each SyncBN becomes a
    BN, which normalises with per-process batch statistics, and a warning
    says so. For the torchrun launcher the gloo process group is also
    initialised here, because mmengine 0.10's ``init_dist`` calls
    ``torch.cuda.set_device`` unconditionally (which fails on CPU-only
    builds); the Runner then finds the group already initialised. With
    CUDA, or in a single process (where SyncBN already acts as BN), nothing
    changes.

    Args:
        cfg (Config): The run's config, modified in place.
        launcher (str): mmengine launcher, 'none' for one process.

    Returns:
        Config: ``cfg``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        print_log(
            f'No CUDA: distributed backend '
            f'{dist_cfg.get("backend", "nccl")!r} -> "gloo".',
            logger='current',
            level=logging.WARNING,
        )
        dist_cfg['backend'] = 'gloo'
    replaced = _replace_sync_norms(cfg.model)
    if replaced:
        print_log(
            f'No CUDA: SyncBN cannot synchronise CPU tensors; {replaced} '
            'SyncBN config(s) in `model` use BN instead (batch statistics '
            'per process).',
            logger='current',
            level=logging.WARNING,
        )
    # mmengine's default DDP wrapper pins device_ids=[LOCAL_RANK], which
    # DDP rejects for CPU modules.
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False),
    )
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'pytorch' and not dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        dist.init_process_group(
            backend='gloo',
            **(
                dict(timeout=datetime.timedelta(seconds=timeout))
                if timeout
                else {}
            ),
        )
    elif launcher != 'pytorch':
        print_log(
            f'launcher {launcher!r} without CUDA: mmengine 0.10 calls '
            'torch.cuda.set_device while initialising it, which fails on '
            'CPU-only builds; use torchrun (tools/dist_train.sh, '
            '--launcher pytorch) on CPUs.',
            logger='current',
            level=logging.WARNING,
        )
    return cfg
