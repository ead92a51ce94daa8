"""Inference and training speed and memory of model configs, with peers.

Measures, for each config (ours and any mmseg config, e.g. the peers
``mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py`` and
``mmseg::bisenetv2/bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024.py`` that
``--peers`` adds):

* inference latency (median and p90 of ``--runs`` timed forwards after
  ``--warmup``), throughput and peak memory, for every requested variant:
  ``eager``, the cumulative optimisation steps of
  :func:`litehrnet_seg.deploy.optimize` (``fold_bn``, ``channels_last``,
  ``compile``, ``cuda_graphs``), ``onnxruntime`` (exported model with
  dynamic batch, height and width, CPU) and ``onnxruntime_static`` (height
  and width fixed at export, as in mmdeploy's static configs).
  ``cuda_graphs`` captures the model of the requested steps before it
  except ``compile`` with CUDA graphs (``CUDAGraphModel``); the compiled
  form, inductor's CUDA graphs, is ``compile`` with ``--compile-mode
  reduce-overhead``. Without CUDA, ``cuda_graphs`` logs that it falls back
  and measures the uncaptured model;
* optionally (``--train``) the time and peak memory of one training step
  (forward, backward, SGD step) for a crop and batch, with ``--amp``.

Ratios are to the first config's eager latency, all measured in the same
run; on a shared CPU only such ratios are meaningful, absolute times only
on an otherwise idle machine (or a GPU). Prints a markdown table and
writes ``--json``. Example (docs/benchmarks.md)::

    python tools/analysis/benchmark.py \
        configs/litehrnet/fcn-concat_litehrnet18_4xb4-160k_\
cityscapes-512x1024.py \
        --peers --threads 2 --variants eager fold_bn channels_last onnxruntime
"""

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from litehrnet_seg.checkpoint import build_model  # noqa: E402
from litehrnet_seg.deploy import (  # noqa: E402
    OPTIMIZATION_STEPS,
    TensorModel,
    export_onnx,
    onnxruntime_session,
    optimize,
    time_calls,
)

PEERS = (
    'mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py',
    'mmseg::bisenetv2/bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024.py',
)
VARIANTS = (
    ('eager',) + OPTIMIZATION_STEPS + ('onnxruntime', 'onnxruntime_static')
)
PRECISIONS = {
    'fp32': None,
    'fp16': torch.float16,
    'bf16': torch.bfloat16,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='model config files')
    parser.add_argument(
        '--peers',
        action='store_true',
        help='also measure mmseg fcn_hr18s and BiSeNetV2',
    )
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--precision',
        nargs='+',
        default=['fp32'],
        choices=sorted(PRECISIONS),
        help='autocast precisions for the eager variant',
    )
    parser.add_argument(
        '--variants',
        nargs='+',
        default=['eager'],
        choices=VARIANTS,
        help='optimisation steps are cumulative over the requested ones: '
        'with fold_bn channels_last, channels_last means fold_bn + '
        'channels_last',
    )
    parser.add_argument(
        '--compile-mode',
        default=None,
        help='torch.compile mode of the compile variant, e.g. '
        "'max-autotune' or 'reduce-overhead' (CUDA graphs)",
    )
    parser.add_argument(
        '--train',
        action='store_true',
        help='also time one training step (seg models)',
    )
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--train-crop', type=int, nargs=2, default=None)
    parser.add_argument(
        '--amp', action='store_true', help='also time AMP training steps'
    )
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--keep-going',
        action='store_true',
        help='report a failing variant (in the log and the JSON '
        '"failures") and measure the rest instead of stopping',
    )
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='smoke-test mode: 64x128 input, 2 runs, 1 warm-up',
    )
    args = parser.parse_args(argv)
    args.failures = []
    if args.tiny:
        args.shape, args.runs, args.warmup = [64, 128], 2, 1
    if args.peers:
        args.configs += list(PEERS)
    if not args.configs:
        parser.error('give at least one config, or --peers')
    return args


def build_tensor_model(config: str, device: str) -> TensorModel:
    """Eval-mode tensor model of a config, SyncBN reverted to BN."""
    from mmengine.model import revert_sync_batchnorm

    model = build_model(config)
    model = revert_sync_batchnorm(model).to(device)
    return TensorModel(model).eval()


class PeakMemory:
    """Peak memory while the block runs: CUDA allocator peak, or the
    process's resident set sampled every 5 ms on a CPU.

    ``peak_mib`` is the increase over the level at entry.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith('cuda')
        self.peak_mib = 0.0

    @staticmethod
    def _rss() -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._rss())

    def __enter__(self) -> 'PeakMemory':
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        elif os.path.exists('/proc/self/statm'):
            _release_free_memory()
            self._base = self._peak = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        elif hasattr(self, '_thread'):
            self._stop.set()
            self._thread.join()
            peak = self._peak
        else:
            return
        self.peak_mib = (peak - self._base) / 2**20


def _release_free_memory() -> None:
    # glibc keeps freed blocks; return them so the resident set at entry
    # is what is really in use.
    try:
        import ctypes

        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def summarise(times: list[float], batch: int, **fields) -> dict:
    times = sorted(times)
    median = statistics.median(times)
    return dict(
        **fields,
        batch=batch,
        median_ms=1e3 * median,
        p90_ms=1e3 * times[min(len(times) - 1, int(0.9 * len(times)))],
        images_per_s=batch / median,
    )


def inference_rows(model: TensorModel, name: str, args) -> list[dict]:
    """Latency of each requested variant and precision of one model."""
    h, w = args.shape
    x = torch.randn(args.batch, 3, h, w, device=args.device)
    rows = []
    steps = [v for v in VARIANTS if v in args.variants]
    for variant in steps:
        precisions = args.precision if variant == 'eager' else ['fp32']
        for precision in precisions:
            try:
                times, memory = _time_variant(
                    model, variant, precision, x, args
                )
            except Exception as e:
                if not args.keep_going:
                    raise
                _record_failure(args, name, variant, precision, e)
                continue
            rows.append(
                summarise(
                    times,
                    args.batch,
                    config=name,
                    variant=variant,
                    precision=precision,
                    shape=[h, w],
                    device=args.device,
                    threads=torch.get_num_threads(),
                    peak_mib=memory.peak_mib,
                )
            )
            _print_progress(rows[-1])
    return rows


def _time_variant(model, variant: str, precision: str, x, args):
    """Call times and peak memory of one variant and precision."""
    run, cleanup = _prepare(model, variant, x, args)
    dtype = PRECISIONS[precision]
    with (
        torch.inference_mode(),
        torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None),
    ):
        # Memory is measured from before the first call (lazy init,
        # compilation), as the allocator keeps what a warm model needs.
        with PeakMemory(args.device) as memory:
            run()
            times = time_calls(run, args.runs, args.warmup, x.is_cuda)
    cleanup()
    return times, memory


def _record_failure(args, config, variant, precision, error) -> None:
    """--keep-going: report a failed measurement and go on."""
    message = f'{type(error).__name__}: {error}'.splitlines()[0][:300]
    print(
        f'  {config} {variant} {precision}: FAILED ({message})',
        file=sys.stderr,
        flush=True,
    )
    args.failures.append(
        dict(
            config=config,
            variant=variant,
            precision=precision,
            error=message,
        )
    )


def _prepare(model: TensorModel, variant: str, x: torch.Tensor, args):
    """A no-argument callable running ``variant`` on ``x``, and cleanup."""
    if variant == 'eager':
        return (lambda: model(x)), (lambda: None)
    if variant.startswith('onnxruntime'):
        tmp = tempfile.TemporaryDirectory()
        # _static: height and width fixed at export, as mmdeploy's static
        # configs do; onnxruntime then folds the shape arithmetic.
        path = export_onnx(
            model,
            Path(tmp.name) / 'model.onnx',
            x.cpu(),
            dynamic_hw=variant == 'onnxruntime',
        )
        session = onnxruntime_session(path, args.threads)
        feed = {session.get_inputs()[0].name: x.cpu().numpy()}
        return (lambda: session.run(None, feed)), tmp.cleanup
    # Cumulative over the requested steps only, in their canonical order.
    upto = OPTIMIZATION_STEPS.index(variant)
    steps = [s for s in OPTIMIZATION_STEPS[: upto + 1] if s in args.variants]
    if variant == 'cuda_graphs':
        # Graphs of the uncompiled model; compiled graphs are the compile
        # variant with --compile-mode reduce-overhead.
        steps = [s for s in steps if s != 'compile']
        if not x.is_cuda:
            # optimize() logs this too, but mmengine's log is muted here.
            print(
                '  cuda_graphs: no CUDA device; measuring the model '
                'without graph capture',
                file=sys.stderr,
            )
    options = dict(mode=args.compile_mode) if args.compile_mode else None
    fast = optimize(model, steps, options)
    return (lambda: fast(x)), (lambda: None)


def _seg_batch(model, batch: int, crop: tuple[int, int], device: str):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    h, w = crop
    num_classes = model.decode_head.num_classes
    samples = []
    for _ in range(batch):
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w))
        )
        labels = torch.randint(0, num_classes, (1, h, w), device=device)
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return torch.randn(batch, 3, h, w, device=device), samples


def training_rows(model: TensorModel, name: str, args) -> list[dict]:
    """Time and peak memory of SGD training steps (fp32, and AMP)."""
    segmentor = copy.deepcopy(model.model).train()
    if not hasattr(segmentor, 'decode_head'):
        return []
    crop = args.train_crop or args.shape
    x, samples = _seg_batch(segmentor, args.train_batch, crop, args.device)
    optimizer = torch.optim.SGD(segmentor.parameters(), lr=1e-4)
    cuda = x.is_cuda
    rows = []
    modes = ['fp32'] + (['amp'] if args.amp else [])
    for mode in modes:
        amp_dtype = torch.float16 if cuda else torch.bfloat16
        scaler = torch.amp.GradScaler(enabled=cuda and mode == 'amp')

        def step(mode=mode, amp_dtype=amp_dtype, scaler=scaler):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(
                x.device.type, dtype=amp_dtype, enabled=mode == 'amp'
            ):
                losses = segmentor.loss(x, samples)
                loss = sum(v for k, v in losses.items() if 'loss' in k)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        try:
            with PeakMemory(args.device) as memory:
                step()
                times = time_calls(step, max(3, args.runs // 4), 1, cuda)
        except Exception as e:
            if not args.keep_going:
                raise
            _record_failure(args, name, f'train-{mode}', mode, e)
            continue
        rows.append(
            summarise(
                times,
                args.train_batch,
                config=name,
                variant=f'train-{mode}',
                precision=mode,
                shape=list(crop),
                device=args.device,
                threads=torch.get_num_threads(),
                peak_mib=memory.peak_mib,
            )
        )
        _print_progress(rows[-1])
    return rows


def _print_progress(row: dict) -> None:
    print(
        f'  {row["config"]} {row["variant"]} {row["precision"]}: '
        f'{row["median_ms"]:.1f} ms',
        file=sys.stderr,
        flush=True,
    )


def print_table(rows: list[dict]) -> None:
    """Markdown table; ratios to the first config's first row."""
    if not rows:
        return
    base = {}
    for r in rows:
        base.setdefault(r['variant'].startswith('train'), r['median_ms'])
    print(
        '| config | variant | precision | input | batch | median ms | '
        'p90 ms | img/s | peak MiB | ratio |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        ref = base[r['variant'].startswith('train')]
        print(
            f'| {r["config"]} | {r["variant"]} | {r["precision"]} | '
            f'{r["shape"][0]}x{r["shape"][1]} | {r["batch"]} | '
            f'{r["median_ms"]:.1f} | {r["p90_ms"]:.1f} | '
            f'{r["images_per_s"]:.2f} | {r["peak_mib"]:.0f} | '
            f'{r["median_ms"] / ref:.2f} |'
        )


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for config in args.configs:
        name = Path(config).stem
        print(f'{name}:', file=sys.stderr, flush=True)
        model = build_tensor_model(config, args.device)
        rows += inference_rows(model, name, args)
        if args.train:
            rows += training_rows(model, name, args)
    print_table(rows)
    if args.json:
        meta = dict(
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            device=args.device,
            cpu=_cpu_name(),
        )
        Path(args.json).write_text(
            json.dumps(
                dict(meta=meta, results=rows, failures=args.failures),
                indent=2,
            )
        )
    return rows


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown'


if __name__ == '__main__':
    main()
