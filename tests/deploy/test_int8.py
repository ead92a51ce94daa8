"""INT8: a model trained briefly on the bundled Cityscapes frame, exported
with the TorchScript exporter and statically quantized on the real frame
(the default recipe: INT8 weights, 16-bit activations), really holds INT8
convs, keeps the channel-weighting paths in float and agrees with the
float graph on >= 98% of the pixels at 128x256 and 77x135. At 250x190 the
target is not reached (strict xfail, so reaching it turns the suite red
until the marker is removed)."""

from collections import Counter

import cv2
import numpy as np
import onnx
import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from model_utils import FRAME, ROOT, SEG_CONFIG, real_frame

from litehrnet_seg.checkpoint import build_model
from litehrnet_seg.deploy import (
    CalibrationReader,
    TensorModel,
    argmax_agreement,
    calibration_images,
    export_onnx,
    int8_op_count,
    onnxruntime_session,
    quantize_int8,
    run_session,
    weighting_nodes,
)

pytest.importorskip('onnxruntime')
LABELS = (
    ROOT / 'tests/data/cityscapes/gtFine/val/frankfurt/'
    'frankfurt_000000_000294_gtFine_labelTrainIds_reference.png'
)
CALIB_DIR = ROOT / 'tests/data/cityscapes/leftImg8bit'
ITERS = 60


def _train(model, iters: int) -> None:
    """A short AdamW run (the quickstart's optimiser) on the frame and its
    mirror image, through the segmentor's own loss."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    image = torch.from_numpy(cv2.imread(str(FRAME))).permute(2, 0, 1)
    label = torch.from_numpy(cv2.imread(str(LABELS), cv2.IMREAD_GRAYSCALE))
    samples = []
    for flip in (False, True):
        sample = SegDataSample()
        gt = label.flip(-1) if flip else label
        sample.gt_sem_seg = PixelData(data=gt[None].long())
        sample.set_metainfo(
            dict(img_shape=tuple(gt.shape), pad_shape=tuple(gt.shape))
        )
        samples.append(sample)
    inputs = [image.contiguous(), image.flip(-1).contiguous()]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=0.005, weight_decay=1e-4
    )
    model.train()
    for _ in range(iters):
        data = model.data_preprocessor(
            dict(inputs=inputs, data_samples=samples), True
        )
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope='module')
def quantized(tmp_path_factory):
    """(tensor model, fp32 session, int8 session, int8 path, fp32 path)."""
    torch.manual_seed(0)
    segmentor = revert_sync_batchnorm(build_model(str(SEG_CONFIG)))
    _train(segmentor, ITERS)
    model = TensorModel(segmentor).eval()
    tmp = tmp_path_factory.mktemp('int8')
    fp32 = export_onnx(
        model, tmp / 'seg.onnx', real_frame(model), exporter='torchscript'
    )

    def to_input(bgr: np.ndarray) -> np.ndarray:
        chw = torch.from_numpy(bgr).permute(2, 0, 1).contiguous()
        data = segmentor.data_preprocessor(dict(inputs=[chw]), False)
        return data['inputs'].numpy()

    reader = CalibrationReader(calibration_images(CALIB_DIR), to_input)
    int8 = quantize_int8(fp32, tmp / 'seg.int8.onnx', reader)
    return (
        model,
        onnxruntime_session(fp32, threads=1),
        onnxruntime_session(int8, threads=1),
        int8,
        fp32,
    )


@pytest.mark.slow
def test_trained_model_predicts_the_frame(quantized):
    # Agreement is only meaningful for a model that learned something.
    model = quantized[0]
    x = real_frame(model)
    with torch.no_grad():
        logits = model(x)
    pred = logits.argmax(1)[0].numpy()
    label = cv2.imread(str(LABELS), cv2.IMREAD_GRAYSCALE)
    label = cv2.resize(
        label, pred.shape[::-1], interpolation=cv2.INTER_NEAREST
    )
    known = label != 255
    assert (pred[known] == label[known]).mean() > 0.8
    assert len(np.unique(pred)) >= 3


@pytest.mark.slow
@pytest.mark.parametrize('size', [None, (77, 135)])
def test_int8_agrees_with_fp32_at_98_percent(quantized, size):
    # Measured 99.4% / 99.0% (all-8-bit activations: 81.8% / 89.1%).
    model, fp32, int8 = quantized[:3]
    x = real_frame(model, size)
    expected = run_session(fp32, x)
    agreement = argmax_agreement(run_session(int8, x), expected)
    assert agreement >= 0.98, f'{size}: {agreement:.4f}'
    # The measure can fail: logits with the classes shifted disagree.
    assert argmax_agreement(np.roll(expected, 1, axis=1), expected) < 0.05


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason='Issue 13 target not reached at 250x190: 95.1% agreement '
    '(INT8 weights, 16-bit activations); this briefly trained model is '
    'fragile there even in float (3.8-5.3% of its fp32 pixels flip under '
    '+-1 grey level of input noise); see docs/deployment.md',
)
def test_int8_agrees_with_fp32_at_98_percent_250x190(quantized):
    model, fp32, int8 = quantized[:3]
    x = real_frame(model, (250, 190))
    agreement = argmax_agreement(run_session(int8, x), run_session(fp32, x))
    assert agreement >= 0.98, f'250x190: {agreement:.4f}'


@pytest.mark.slow
def test_int8_agreement_at_250x190_is_far_from_broken(quantized):
    model, fp32, int8 = quantized[:3]
    x = real_frame(model, (250, 190))
    agreement = argmax_agreement(run_session(int8, x), run_session(fp32, x))
    assert agreement > 0.9, f'250x190: {agreement:.4f}'


def test_unknown_activation_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match='activation_type'):
        quantize_int8(tmp_path / 'a.onnx', tmp_path / 'b.onnx', None, 'int4')


@pytest.mark.slow
def test_graph_holds_int8_convs(quantized):
    counts = int8_op_count(onnx.load(str(quantized[3])))
    assert counts['int8_initializers'] > 0
    assert counts['QuantizeLinear'] > 0
    assert counts['int8_convs'] + counts['QLinearConv'] > 100, counts
    float_counts = int8_op_count(onnx.load(str(quantized[4])))
    assert float_counts['int8_convs'] == float_counts['QuantizeLinear'] == 0


@pytest.mark.slow
def test_channel_weighting_stays_float(quantized):
    graph = onnx.load(str(quantized[3])).graph
    producer = {out: n for n in graph.node for out in n.output}
    kept = set(weighting_nodes(onnx.load(str(quantized[4]))))
    by_name = {n.name: n for n in graph.node}
    ops = Counter(by_name[name].op_type for name in kept if name in by_name)
    # Every Sigmoid with its two 1x1 convs and the multiply it feeds.
    assert ops['Sigmoid'] > 0
    assert ops['Conv'] == 2 * ops['Sigmoid']
    assert ops['Mul'] >= ops['Sigmoid']
    for name in kept:
        node = by_name[name]
        if node.op_type == 'Conv':
            weight = producer.get(node.input[1])
            assert weight is None or weight.op_type != 'DequantizeLinear'
    # ... while the main path's convs are quantized.
    quantized_convs = [
        n
        for n in graph.node
        if n.op_type == 'Conv'
        and n.input[1] in producer
        and producer[n.input[1]].op_type == 'DequantizeLinear'
    ]
    assert quantized_convs and not kept & {n.name for n in quantized_convs}


def test_calibration_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing'):
        calibration_images(tmp_path / 'missing')
    (tmp_path / 'notes.txt').write_text('no images here')
    with pytest.raises(ValueError, match='holds no image'):
        calibration_images(tmp_path)
    nested = tmp_path / 'a' / 'b'
    nested.mkdir(parents=True)
    cv2.imwrite(str(nested / 'x.png'), np.zeros((40, 50, 3), np.uint8))
    assert calibration_images(tmp_path) == [nested / 'x.png']
