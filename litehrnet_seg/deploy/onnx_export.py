"""ONNX export with an onnxruntime parity check.

Two exporters: the ``torch.export``-based one (``dynamo=True``, the
default) and the TorchScript tracer (``dynamo=False``), which mmdeploy and
older toolchains use. With either, segmentation models get dynamic batch,
height and width and work for sides that are not multiples of 32: the
backbone's cross-resolution pooling and resizes export as size-driven
graphs (see
:func:`litehrnet_seg.models.layers.ops.adaptive_avg_pool`). Pose
models get a dynamic batch for their fixed crop size.
"""

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .inference_optimizer import sum_fuses_coarse_first

#: Exporters :func:`export_onnx` accepts.
EXPORTERS = ('dynamo', 'torchscript')


class ParityError(RuntimeError):
    """onnxruntime's output differs from PyTorch's beyond the tolerance."""


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    example: torch.Tensor,
    dynamic_hw: bool = True,
    opset: int = 18,
    output_name: str = 'output',
    exporter: str = 'dynamo',
    coarse_first_fuse: bool = True,
) -> Path:
    """Export a tensor model to ONNX.

    Args:
        model (nn.Module): Tensor-in, tensor-out model in eval mode, e.g.
            :class:`~litehrnet_seg.deploy.TensorModel`.
        path (str | PathLike): Output ``.onnx`` file.
        example (Tensor): Example input of shape (N, 3, H, W).
        dynamic_hw (bool): Make height and width dynamic (segmentation);
            the batch is always dynamic.
        opset (int): ONNX opset, at least 17.
        output_name (str): Name of the graph's output.
        exporter (str): 'dynamo' (``torch.export``-based) or
            'torchscript' (the tracer, ``dynamo=False``).
        coarse_first_fuse (bool): Export a copy whose backbone sums its
            fuse branches coarse first (see
            :func:`~litehrnet_seg.deploy.sum_fuses_coarse_first`); only
            static-shape ``torch.export`` graphs use that order, where the
            sizes are known to halve exactly. Defaults to True.

    Returns:
        Path: The written file.
    """
    if opset < 17:
        raise ValueError(f'opset must be >= 17, got {opset}')
    if exporter not in EXPORTERS:
        raise ValueError(
            f'exporter must be one of {EXPORTERS}, got {exporter!r}'
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    export = (
        _export_torchscript if exporter == 'torchscript' else (_export_dynamo)
    )
    if coarse_first_fuse:
        model = copy.deepcopy(model)
        sum_fuses_coarse_first(model)
    try:
        export(model, tmp, example, dynamic_hw, opset, output_name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Only a complete file gets the final name.
    os.replace(tmp, path)
    return path


def _export_dynamo(model, tmp, example, dynamic_hw, opset, output_name):
    dims = {0: torch.export.Dim('batch', min=1, max=1024)}
    if dynamic_hw:
        # Below 32 pixels the stride-32 branch collapses to one pixel and
        # the exporter would specialise on it.
        dims[2] = torch.export.Dim('height', min=32, max=8192)
        dims[3] = torch.export.Dim('width', min=32, max=8192)
    if example.shape[0] == 1:
        # torch.export specialises sizes 0 and 1; trace with two images
        # so the batch stays dynamic.
        example = example.expand(2, -1, -1, -1).contiguous()
    with torch.no_grad():
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=['input'],
            output_names=[output_name],
            dynamic_shapes=({**dims},),
            verbose=False,
        )
    program.save(str(tmp))


def _export_torchscript(model, tmp, example, dynamic_hw, opset, output_name):
    # The tracer records sizes as values, so the backbone's size-driven
    # pooling and every resize follow the input; dynamic_axes only names
    # the dims that may vary.
    axes = (
        {0: 'batch', 2: 'height', 3: 'width'} if dynamic_hw else {0: 'batch'}
    )
    out_axes = (
        {0: 'batch', 2: 'out_height', 3: 'out_width'}
        if dynamic_hw
        else {0: 'batch'}
    )
    with torch.no_grad(), warnings.catch_warnings():
        # Choosing this exporter is deliberate; its deprecation notice
        # is noise here.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            model.eval(),
            (example,),
            str(tmp),
            dynamo=False,
            opset_version=opset,
            input_names=['input'],
            output_names=[output_name],
            dynamic_axes={'input': axes, output_name: out_axes},
        )


def onnxruntime_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session.

    Args:
        path (str | PathLike): ONNX file.
        threads (int, optional): Intra-op threads (None: onnxruntime's
            default, all cores).

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(path), options, providers=['CPUExecutionProvider']
    )


def run_session(session, x: torch.Tensor) -> np.ndarray:
    """Run a one-input onnxruntime session on a tensor."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.detach().cpu().numpy()})[0]


def parity_errors(
    session, model: nn.Module, x: torch.Tensor
) -> tuple[float, float]:
    """Max abs and max relative difference of onnxruntime vs PyTorch.

    The relative error is the max abs difference over the largest
    PyTorch output magnitude (per-element ratios blow up near zero).

    Args:
        session: onnxruntime session of the exported model.
        model (nn.Module): The PyTorch tensor model.
        x (Tensor): Input.

    Returns:
        tuple[float, float]: (max abs difference, relative error).

    Raises:
        ParityError: If the outputs' shapes differ.
    """
    with torch.no_grad():
        expected = model(x).cpu().numpy()
    actual = run_session(session, x)
    if actual.shape != expected.shape:
        raise ParityError(
            f'onnxruntime output shape {actual.shape} != PyTorch '
            f'{expected.shape} for input {tuple(x.shape)}'
        )
    diff = float(np.abs(actual - expected).max())
    scale = float(np.abs(expected).max())
    return diff, diff / scale if scale > 0 else diff


def check_parity(
    session,
    model: nn.Module,
    x: torch.Tensor,
    atol: float = 1e-4,
    rtol: float | None = None,
) -> float:
    """Max abs difference between onnxruntime and PyTorch on ``x``.

    Args:
        session: onnxruntime session of the exported model.
        model (nn.Module): The PyTorch tensor model.
        x (Tensor): Input.
        atol (float): Largest accepted max abs difference.
        rtol (float, optional): Largest accepted relative error (see
            :func:`parity_errors`); None: not checked.

    Returns:
        float: The max abs difference.

    Raises:
        ParityError: If the outputs' shapes differ or a difference is
            above its tolerance.
    """
    diff, rel = parity_errors(session, model, x)
    if not diff <= atol:
        raise ParityError(
            f'onnxruntime differs from PyTorch by {diff:.3g} (max abs) for '
            f'input {tuple(x.shape)}; tolerance {atol:g}'
        )
    if rtol is not None and not rel <= rtol:
        raise ParityError(
            f'onnxruntime differs from PyTorch by {rel:.3g} (relative to '
            f'the largest output) for input {tuple(x.shape)}; tolerance '
            f'{rtol:g}'
        )
    return diff
