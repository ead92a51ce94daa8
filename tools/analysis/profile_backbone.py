"""Where the Lite-HRNet backbone's time goes: per-op and per-module tables.

Runs the backbone (with IterativeHead, as the segmentation configs use it)
under ``torch.profiler`` in eval mode and prints markdown tables for each
mode: ``nchw`` (everything in NCHW, the backbone's default),
``internal_nhwc`` (NCHW input, the backbone's opt-in internal NHWC on
CPUs, ``cpu_channels_last=True``) and ``channels_last`` (weights and
input in NHWC, as :func:`litehrnet_seg.deploy.optimize` prepares them);
``coarse_first`` and ``channels_last_coarse_first`` are ``nchw`` and
``channels_last`` with the fuse layers summing coarse first
(``fuse_sum_order='coarse_first'``, the fast path's first step):

* per module group (inclusive time): stem, transitions, the conditional
  channel weighting blocks split into cross-resolution weighting,
  depthwise convs and spatial weighting, the shuffle (the blocks' own
  time outside their submodules: chunk + stack), the fuse (the modules'
  time outside their blocks) and the IterativeHead;
* per op (self time), with each op's category: convolution, pooling,
  upsampling, shuffle/concat, layout copy, element-wise, norm.

Module groups are marked with ``record_function`` from forward hooks
added by this script; the model itself is not changed. ``--ab`` then
times the modes without the profiler, interleaved (A B A B ...), and
prints medians and ratios to the first mode: on a shared machine only
such same-run ratios mean something. Example::

    python tools/analysis/profile_backbone.py --shape 512 1024 \
        --threads 2 --runs 5 --modes nchw internal_nhwc --ab 10
"""

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from litehrnet_seg.models.backbones import LiteHRNet  # noqa: E402
from litehrnet_seg.models.layers import (  # noqa: E402
    ConditionalChannelWeighting,
    CrossResolutionWeighting,
    IterativeHead,
    LiteHRModule,
    SpatialWeighting,
    Stem,
)

#: mode -> (backbone's cpu_channels_last, weights and input format,
#: the modules' fuse_sum_order).
MODES = {
    'nchw': (False, torch.contiguous_format, 'sequential'),
    'internal_nhwc': (True, torch.contiguous_format, 'sequential'),
    'channels_last': (True, torch.channels_last, 'sequential'),
    'coarse_first': (False, torch.contiguous_format, 'coarse_first'),
    'channels_last_coarse_first': (True, torch.channels_last, 'coarse_first'),
}

#: Op name fragments -> category, first match wins.
OP_CATEGORIES = (
    ('convolution', 'conv'),
    ('conv2d', 'conv'),
    ('batch_norm', 'norm'),
    ('adaptive_avg_pool', 'pooling'),
    ('avg_pool', 'pooling'),
    ('mean', 'pooling'),
    ('upsample', 'upsampling'),
    ('interpolate', 'upsampling'),
    ('stack', 'shuffle/concat'),
    ('cat', 'shuffle/concat'),
    ('chunk', 'shuffle/concat'),
    ('split', 'shuffle/concat'),
    ('copy_', 'layout copy'),
    ('contiguous', 'layout copy'),
    ('clone', 'layout copy'),
    ('to_dense', 'layout copy'),
    ('reorder', 'layout copy'),
    ('empty', 'allocation'),
    ('relu', 'element-wise'),
    ('sigmoid', 'element-wise'),
    ('mul', 'element-wise'),
    ('add', 'element-wise'),
)


def op_category(name: str) -> str:
    """Category of an aten op name (see :data:`OP_CATEGORIES`)."""
    low = name.lower()
    for fragment, category in OP_CATEGORIES:
        if fragment in low:
            return category
    return 'other'


def module_group(name: str, module: nn.Module) -> str | None:
    """The profile group a backbone submodule is reported under."""
    if isinstance(module, Stem):
        return 'stem'
    if name.startswith('transition') and '.' not in name:
        return 'transition'
    if isinstance(module, LiteHRModule):
        return 'module (blocks + fuse)'
    if isinstance(module, ConditionalChannelWeighting):
        return 'ccw block'
    if isinstance(module, CrossResolutionWeighting):
        return 'ccw: cross-resolution weighting'
    if isinstance(module, SpatialWeighting):
        return 'ccw: spatial weighting'
    if name.endswith('depthwise_convs') and '.layers.' in name:
        return 'ccw: depthwise convs'
    if isinstance(module, IterativeHead):
        return 'iterative head'
    return None


def mark_modules(model: nn.Module) -> list:
    """Wrap each grouped module's forward in ``record_function``.

    Returns:
        list: Hook handles; call ``remove()`` on each to undo.
    """
    handles = []
    for name, module in model.named_modules():
        group = module_group(name, module)
        if group is None:
            continue
        if isinstance(module, nn.ModuleList):
            # A ModuleList has no forward: mark each member instead.
            members = [m for m in module if m is not None]
        else:
            members = [module]
        for member in members:
            stack = []

            def enter(mod, args, group=group, stack=stack):
                stack.append(record_function(f'## {group}'))
                stack[-1].__enter__()

            def leave(mod, args, out, stack=stack):
                stack.pop().__exit__(None, None, None)

            handles.append(member.register_forward_pre_hook(enter))
            handles.append(member.register_forward_hook(leave))
    return handles


def build_backbone(arch: str) -> nn.Module:
    """Eval-mode backbone with IterativeHead, all four branches out."""
    # PyTorch's default initialisation: latency does not depend on values.
    torch.manual_seed(0)
    model = LiteHRNet(arch=arch, with_head=True, out_indices=(0, 1, 2, 3))
    return model.eval()


def profile_model(model, x, runs: int, warmup: int):
    """Profiler events of ``runs`` forwards after ``warmup`` untimed ones."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(x)
    return prof.key_averages()


def group_rows(events, runs: int) -> list[tuple[str, float, int]]:
    """(group, ms per forward, calls per forward), derived groups added."""
    total = {}
    calls = {}
    for e in events:
        if e.key.startswith('## '):
            total[e.key[3:]] = e.cpu_time_total / 1e3 / runs
            calls[e.key[3:]] = e.count // runs
    rows = [(k, total[k], calls[k]) for k in total]
    if 'ccw block' in total:
        inner = sum(
            total.get(k, 0.0)
            for k in (
                'ccw: cross-resolution weighting',
                'ccw: depthwise convs',
                'ccw: spatial weighting',
            )
        )
        rows.append(
            (
                'ccw: split + shuffle (block minus parts)',
                total['ccw block'] - inner,
                calls['ccw block'],
            )
        )
    if 'module (blocks + fuse)' in total and 'ccw block' in total:
        rows.append(
            (
                'fuse (module minus blocks)',
                total['module (blocks + fuse)'] - total['ccw block'],
                calls['module (blocks + fuse)'],
            )
        )
    return sorted(rows, key=lambda r: -r[1])


def op_rows(events, runs: int, top: int) -> list[tuple[str, str, float, int]]:
    """(op, category, self ms per forward, calls per forward), top ops."""
    rows = [
        (
            e.key,
            op_category(e.key),
            e.self_cpu_time_total / 1e3 / runs,
            e.count // runs,
        )
        for e in events
        if not e.key.startswith('## ') and e.self_cpu_time_total > 0
    ]
    return sorted(rows, key=lambda r: -r[2])[:top]


def category_rows(events, runs: int) -> list[tuple[str, float]]:
    """Self time per op category, ms per forward."""
    sums = defaultdict(float)
    for e in events:
        if not e.key.startswith('## '):
            sums[op_category(e.key)] += e.self_cpu_time_total / 1e3 / runs
    return sorted(sums.items(), key=lambda r: -r[1])


def wall_ms(events, runs: int) -> float:
    """Self time of all ops per forward (the profiled forward's CPU time)."""
    return (
        sum(
            e.self_cpu_time_total
            for e in events
            if not e.key.startswith('## ')
        )
        / 1e3
        / runs
    )


def print_tables(label: str, events, runs: int, top: int) -> None:
    total = wall_ms(events, runs)
    print(f'\n### {label}: {total:.1f} ms of op time per forward\n')
    print('| module group (inclusive) | ms | % | calls |')
    print('|---|---|---|---|')
    for name, ms, n in group_rows(events, runs):
        print(f'| {name} | {ms:.1f} | {100 * ms / total:.0f} | {n} |')
    print('\n| op category (self) | ms | % |')
    print('|---|---|---|')
    for name, ms in category_rows(events, runs):
        print(f'| {name} | {ms:.1f} | {100 * ms / total:.0f} |')
    print('\n| op (self) | category | ms | % | calls |')
    print('|---|---|---|---|---|')
    for name, cat, ms, n in op_rows(events, runs, top):
        print(f'| {name} | {cat} | {ms:.2f} | {100 * ms / total:.1f} | {n} |')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='18')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--top', type=int, default=20, help='ops listed')
    parser.add_argument(
        '--modes',
        nargs='+',
        default=['nchw', 'internal_nhwc', 'channels_last'],
        choices=list(MODES),
        help='layouts to profile (see the module docstring)',
    )
    parser.add_argument(
        '--ab',
        type=int,
        default=0,
        metavar='ROUNDS',
        help='also time the modes interleaved for this many rounds',
    )
    parser.add_argument(
        '--no-profile', action='store_true', help='only the --ab timing'
    )
    return parser.parse_args(argv)


def set_mode(model: LiteHRNet, mode: str) -> torch.memory_format:
    """Put ``model`` in ``mode``; returns the input's memory format."""
    cpu_channels_last, memory_format, fuse_sum_order = MODES[mode]
    model.cpu_channels_last = cpu_channels_last
    for module in model.modules():
        if isinstance(module, LiteHRModule):
            module.fuse_sum_order = fuse_sum_order
    model.to(memory_format=memory_format)
    return memory_format


def interleaved_times(model, x, modes, rounds: int) -> dict[str, list]:
    """Seconds per forward of each mode, timed in turn for ``rounds``."""
    times = {m: [] for m in modes}
    with torch.inference_mode():
        for i in range(rounds + 1):
            for mode in modes:
                xm = x.contiguous(memory_format=set_mode(model, mode))
                start = time.perf_counter()
                model(xm)
                if i:  # the first round warms up
                    times[mode].append(time.perf_counter() - start)
    return times


def print_ab(times: dict[str, list]) -> None:
    base = statistics.median(next(iter(times.values())))
    print('\n| mode | median ms | min ms | ratio to first |')
    print('|---|---|---|---|')
    for mode, t in times.items():
        med = statistics.median(t)
        print(
            f'| {mode} | {1e3 * med:.1f} | {1e3 * min(t):.1f} | '
            f'{med / base:.2f} |'
        )


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_backbone(args.arch)
    handles = mark_modules(model)
    x = torch.randn(args.batch, 3, *args.shape)
    print(
        f'Lite-HRNet-{args.arch} backbone + IterativeHead, '
        f'{args.batch}x3x{args.shape[0]}x{args.shape[1]}, '
        f'{torch.get_num_threads()} threads, torch {torch.__version__}, '
        f'{args.runs} profiled forwards'
    )
    results = {}
    for mode in [] if args.no_profile else args.modes:
        memory_format = set_mode(model, mode)
        events = profile_model(
            model,
            x.contiguous(memory_format=memory_format),
            args.runs,
            args.warmup,
        )
        print_tables(mode, events, args.runs, args.top)
        results[mode] = events
    if args.ab:
        for handle in handles:
            handle.remove()
        times = interleaved_times(model, x, args.modes, args.ab)
        print_ab(times)
        results['ab'] = times
    return results


if __name__ == '__main__':
    main()
