"""Static quantization of an exported ONNX model (onnxruntime, QDQ).

The default recipe (:func:`quantize_int8`) is 8-bit per-channel weights
with 16-bit activations: plain 8-bit activations lose too much on
Lite-HRNet. The official fuse adds branch 0 to itself in every module
and channel 0 of branch 0 is a fixed point of the channel split and
shuffle (never processed, only doubled), so that one channel grows 2x per
module, to about 256x the others by stage 3. A per-tensor 8-bit scale
set by it leaves the other channels of the highest-resolution branch a
few levels; 16-bit activations keep them. 7-bit weights
(``reduce_range``) cost another ~5 dB per conv. Lite-HRNet's conditional
channel weighting (pooling -> 1x1 convs -> sigmoid -> multiply) and the
classifier are kept in float (:func:`weighting_nodes`,
:func:`output_nodes`; OpenVINO lost 8.5% Dice on Lite-HRNet-18 with the
weighting quantized). Measurements: ``docs/deployment.md``.
"""

import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # onnx is the optional 'deploy' extra
    import onnx

# Ops through which the weighting path is walked back from a Sigmoid to
# its pooling; pooling ops end the walk (beyond them is the main path).
_PATH_OPS = {'Conv', 'Relu', 'Clip', 'Concat', 'BatchNormalization'}
_POOL_OPS = {'GlobalAveragePool', 'AveragePool', 'ReduceMean', 'MatMul'}
# Ops from the Sigmoid forward to the multiply that applies the weights.
_APPLY_OPS = {'Split', 'Resize', 'Slice', 'Identity'}
_SHAPE_OPS = {'Identity', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze'}


def weighting_nodes(model: 'onnx.ModelProto') -> list[str]:
    """Names of the nodes of every channel-weighting path of the graph.

    A path is a Sigmoid, the ops it is computed from back to (and
    including) the pooling that starts it, and the ops from it to (and
    including) the ``Mul`` that applies it; for the matrix form of
    adaptive pooling both MatMuls and the transpose are included.

    Args:
        model (onnx.ModelProto): The float graph.

    Returns:
        list[str]: Node names, in graph order.
    """
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    consumers = defaultdict(list)
    for n in nodes:
        for name in n.input:
            consumers[name].append(n)
    found = set()

    def walk_back(node, allowed):
        for name in node.input:
            src = producer.get(name)
            if src is None or src.name in found:
                continue
            if src.op_type in allowed:
                found.add(src.name)
                if src.op_type == 'MatMul':
                    # rows @ x @ cols^T: keep the inner MatMul and the
                    # transpose, not what x comes from.
                    walk_back(src, {'MatMul', 'Transpose'})
                elif src.op_type not in _POOL_OPS:
                    walk_back(src, allowed)

    def walk_forward(node):
        for out in node.output:
            for dst in consumers[out]:
                if dst.name in found:
                    continue
                if dst.op_type == 'Mul':
                    found.add(dst.name)
                elif dst.op_type in _APPLY_OPS:
                    found.add(dst.name)
                    walk_forward(dst)

    for n in nodes:
        if n.op_type == 'Sigmoid':
            found.add(n.name)
            walk_back(n, _PATH_OPS | _POOL_OPS)
            walk_forward(n)
    return [n.name for n in nodes if n.name in found]


def depthwise_conv_nodes(model: 'onnx.ModelProto') -> list[str]:
    """Names of the grouped (depthwise) Conv nodes of a graph.

    Args:
        model (onnx.ModelProto): The float graph.

    Returns:
        list[str]: Node names.
    """
    names = []
    for n in model.graph.node:
        groups = [a.i for a in n.attribute if a.name == 'group']
        if n.op_type == 'Conv' and groups and groups[0] > 1:
            names.append(n.name)
    return names


def output_nodes(model: 'onnx.ModelProto') -> list[str]:
    """Names of the nodes that compute the graph's outputs.

    Each output is followed back through shape-only ops to the node that
    computes it (for a segmentor: the classifier conv). Quantizing its
    output rounds the logits to 256 levels, which flips the argmax
    wherever two classes are close; keeping it in float costs one
    small conv.

    Args:
        model (onnx.ModelProto): The float graph.

    Returns:
        list[str]: Node names.
    """
    producer = {out: n for n in model.graph.node for out in n.output}
    names = []
    for output in model.graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type in _SHAPE_OPS:
            node = producer.get(node.input[0])
        if node is not None:
            names.append(node.name)
    return names


def int8_op_count(model: 'onnx.ModelProto') -> dict[str, int]:
    """How much of a graph is INT8.

    Args:
        model (onnx.ModelProto): A (quantized) graph.

    Returns:
        dict[str, int]: Counts of ``QuantizeLinear``, ``DequantizeLinear``,
        ``QLinearConv``, of 8-bit initializers (``int8_initializers``) and
        of float Conv nodes whose weight comes from a DequantizeLinear of
        an 8-bit initializer (``int8_convs``).
    """
    import onnx

    graph = model.graph
    eight_bit = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    int8_inits = {
        i.name for i in graph.initializer if i.data_type in eight_bit
    }
    dq_of_int8 = {
        n.output[0]
        for n in graph.node
        if n.op_type == 'DequantizeLinear' and n.input[0] in int8_inits
    }
    ops = defaultdict(int)
    for n in graph.node:
        ops[n.op_type] += 1
    return {
        'QuantizeLinear': ops['QuantizeLinear'],
        'DequantizeLinear': ops['DequantizeLinear'],
        'QLinearConv': ops['QLinearConv'],
        'int8_initializers': len(int8_inits),
        'int8_convs': sum(
            n.op_type == 'Conv' and n.input[1] in dq_of_int8
            for n in graph.node
        ),
    }


#: Activation types :func:`quantize_int8` accepts.
ACTIVATION_TYPES = ('uint16', 'uint8')


def quantize_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    reader,
    activation_type: str = 'uint16',
    keep_weighting_float: bool = True,
    keep_output_float: bool = True,
    keep_depthwise_float: bool = False,
    per_channel: bool = True,
    reduce_range: bool = False,
    op_types: list[str] | None = None,
    preprocess: bool = True,
) -> Path:
    """Static quantization (QDQ, INT8 weights) calibrated on real inputs.

    Args:
        fp32_path (str | PathLike): Float ONNX model.
        out_path (str | PathLike): Quantized ONNX file to write
            (atomically: a temporary file renamed at the end).
        reader: onnxruntime calibration data reader, e.g.
            :class:`~litehrnet_seg.deploy.calibration.CalibrationReader`.
        activation_type (str): 'uint16' (default: the accurate recipe)
            or 'uint8' (all-8-bit: what INT8 kernels run, but branch 0's
            growing channel 0 crushes the other channels, see the
            module docstring).
        keep_weighting_float (bool): Keep the channel-weighting paths
            (:func:`weighting_nodes`) in float. Defaults to True.
        keep_output_float (bool): Keep the nodes computing the outputs
            (:func:`output_nodes`, the classifier) in float. Defaults to
            True.
        keep_depthwise_float (bool): Keep the depthwise convs in float.
            Defaults to False.
        per_channel (bool): Per-output-channel weight scales (needed by
            the depthwise convs, whose channels differ widely in range).
        reduce_range (bool): 7-bit weights (avoids u8 x s8 saturation in
            16-bit sums on CPUs without VNNI). Defaults to False: the
            7-bit weights cost accuracy, measurably.
        op_types (list[str], optional): Op types to quantize; None:
            onnxruntime's default (all it supports).
        preprocess (bool): Run onnxruntime's ``quant_pre_process`` (shape
            inference and graph optimisation) first.

    Returns:
        Path: ``out_path``.

    Raises:
        ValueError: If ``activation_type`` is not in
            :data:`ACTIVATION_TYPES`.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if activation_type not in ACTIVATION_TYPES:
        raise ValueError(
            f'activation_type must be one of {ACTIVATION_TYPES}, got '
            f'{activation_type!r}'
        )
    activations = {
        'uint16': QuantType.QUInt16,
        'uint8': QuantType.QUInt8,
    }[activation_type]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        source = Path(fp32_path)
        if preprocess:
            prepared = Path(tmp) / 'prepared.onnx'
            # Symbolic shape inference gives up on the size-driven pooling
            # (Range over runtime sizes); ONNX's own inference suffices.
            quant_pre_process(
                str(source), str(prepared), skip_symbolic_shape=True
            )
            source = prepared
        graph = onnx.load(str(source))
        exclude = weighting_nodes(graph) if keep_weighting_float else []
        if keep_output_float:
            exclude += output_nodes(graph)
        if keep_depthwise_float:
            exclude += depthwise_conv_nodes(graph)
        staged = Path(tmp) / out_path.name
        quantize_static(
            str(source),
            str(staged),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=activations,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=CalibrationMethod.MinMax,
        )
        os.replace(staged, out_path)
    return out_path


def argmax_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels where two logit maps pick the same class.

    Args:
        a (ndarray): Logits (N, C, H, W).
        b (ndarray): Logits of the same shape.

    Returns:
        float: Agreement in [0, 1].
    """
    if a.shape != b.shape:
        raise ValueError(f'logit shapes differ: {a.shape} vs {b.shape}')
    return float((a.argmax(1) == b.argmax(1)).mean())
