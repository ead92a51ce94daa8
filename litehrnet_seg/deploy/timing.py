"""Wall-clock timing of repeated calls, shared by the benchmark and the
export tools."""

import time
from collections.abc import Callable

import torch


def time_calls(
    fn: Callable[[], object], runs: int, warmup: int = 2, cuda: bool = False
) -> list[float]:
    """Seconds per call of ``fn`` for ``runs`` timed calls.

    Args:
        fn (Callable): No-argument callable, e.g. ``lambda: model(x)``.
        runs (int): Timed calls.
        warmup (int): Untimed calls first. Defaults to 2.
        cuda (bool): Synchronise CUDA around each call, so asynchronous
            kernels are counted. Defaults to False.

    Returns:
        list[float]: One duration per timed call.
    """
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(warmup + runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times
