"""Static INT8 quantization of an exported ONNX model (onnxruntime, QDQ).

Lite-HRNet's conditional channel weighting (pooling -> 1x1 convs ->
sigmoid -> multiply, in both the cross-resolution and the spatial
weighting) is sensitive to quantization: OpenVINO's tests lost 8.5% Dice
on Lite-HRNet-18 with everything quantized and recovered it by keeping
that path in float. :func:`weighting_nodes` finds the path in the graph
(by structure, so it works for both exporters' node names) and
:func:`quantize_int8` keeps it in float and quantizes the rest.
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


def quantize_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    reader,
    keep_weighting_float: bool = True,
    keep_output_float: bool = True,
    keep_depthwise_float: bool = False,
    per_channel: bool = True,
    reduce_range: bool = True,
    op_types: list[str] | None = None,
    preprocess: bool = True,
) -> Path:
    """Static INT8 quantization (QDQ) calibrated on real inputs.

    Args:
        fp32_path (str | PathLike): Float ONNX model.
        out_path (str | PathLike): Quantized ONNX file to write
            (atomically: a temporary file renamed at the end).
        reader: onnxruntime calibration data reader, e.g.
            :class:`~litehrnet_seg.deploy.calibration.CalibrationReader`.
        keep_weighting_float (bool): Keep the channel-weighting paths
            (:func:`weighting_nodes`) in float. Defaults to True.
        keep_output_float (bool): Keep the nodes computing the outputs
            (:func:`output_nodes`, the classifier) in float. Defaults to
            True.
        keep_depthwise_float (bool): Keep the depthwise convs in float
            (they hold few FLOPs and gain little from INT8 on CPUs).
        per_channel (bool): Per-output-channel weight scales (needed by
            the depthwise convs, whose channels differ widely in range).
        reduce_range (bool): 7-bit weights. On CPUs without VNNI
            (AVX2), u8 x s8 products summed in 16 bits can saturate;
            7 bits avoid it.
        op_types (list[str], optional): Op types to quantize; None:
            onnxruntime's default (all it supports).
        preprocess (bool): Run onnxruntime's ``quant_pre_process`` (shape
            inference and graph optimisation) first.

    Returns:
        Path: ``out_path``.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

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
            activation_type=QuantType.QUInt8,
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
