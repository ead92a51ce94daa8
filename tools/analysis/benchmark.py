"""Forward latency of segmentation configs (eager PyTorch).

Median and p90 over ``--runs`` timed forwards after ``--warmup`` untimed
ones, batch 1, fp32. Several configs in one run give comparable ratios; on
a CPU only ratios are meaningful across machines.

    python tools/analysis/benchmark.py CONFIG [CONFIG ...] \
        [--shape 512 1024] [--runs 10] [--threads 2] [--device cpu]
"""

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from get_flops import TensorForward, build_model  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='model config files')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--json', help='also write the results here')
    return parser.parse_args(argv)


def time_forward(
    model: torch.nn.Module, inputs: torch.Tensor, runs: int, warmup: int
) -> list[float]:
    """Seconds per forward for ``runs`` timed calls."""
    sync = torch.cuda.synchronize if inputs.is_cuda else lambda: None
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            start = time.perf_counter()
            model(inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.shape
    inputs = torch.randn(1, 3, h, w, device=args.device)
    results = []
    for config in args.configs:
        model = TensorForward(build_model(config)).to(args.device).eval()
        times = sorted(time_forward(model, inputs, args.runs, args.warmup))
        results.append(
            dict(
                config=Path(config).stem,
                shape=[h, w],
                device=args.device,
                threads=torch.get_num_threads(),
                median_ms=1e3 * statistics.median(times),
                p90_ms=1e3 * times[min(len(times) - 1, int(0.9 * len(times)))],
            )
        )
    base = results[0]['median_ms']
    print('| config | input | median ms | p90 ms | ratio to first |')
    print('|---|---|---|---|---|')
    for r in results:
        print(
            f'| {r["config"]} | {h}x{w} | {r["median_ms"]:.1f} | '
            f'{r["p90_ms"]:.1f} | {r["median_ms"] / base:.2f} |'
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == '__main__':
    main()
