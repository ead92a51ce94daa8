"""Inference API and CLI (tools/inference.py): images, folders, videos,
seg and pose, and the edge inputs users feed them (gray, RGBA, 16-bit,
tiny, corrupt, empty). Random weights throughout: these tests check
plumbing, sizes and colours, not accuracy.

One CLI run goes through a subprocess (the real entry point and its exit
status); the others call ``main()`` in-process to save the ~10 s import.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from litehrnet_seg.apis import (
    ImageReadError,
    InputError,
    SegInferencer,
    cli,
    label_map,
    list_images,
    output_names,
    read_image,
)
from litehrnet_seg.checkpoint import dataset_meta_from_config

ROOT = Path(__file__).resolve().parents[2]
SEG_CONFIG = ROOT / (
    'configs/litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-'
    '128x256.py'
)
POSE_CONFIG = ROOT / (
    'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-'
    '256x192.py'
)
FRAME = ROOT / (
    'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)
COCO = ROOT / 'tests/data/coco'


@pytest.fixture(scope='module')
def small() -> np.ndarray:
    """The bundled Cityscapes frame shrunk to 64x128 (BGR uint8)."""
    return cv2.resize(cv2.imread(str(FRAME)), (128, 64))


@pytest.fixture(scope='module')
def inferencer():
    torch.manual_seed(0)
    return SegInferencer(SEG_CONFIG, optimize=False)


def palette_bgr(meta: dict) -> set:
    return {tuple(c[::-1]) for c in meta['palette']}


def colours(image: np.ndarray) -> set:
    return {tuple(c) for c in np.unique(image.reshape(-1, 3), axis=0)}


# --- reading inputs -------------------------------------------------------


def test_read_image_converts_gray_rgba_and_16_bit(tmp_path, small):
    cv2.imwrite(str(tmp_path / 'gray.png'), small[..., 0])
    rgba = cv2.cvtColor(small, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 0  # fully transparent: colours are still kept
    cv2.imwrite(str(tmp_path / 'rgba.png'), rgba)
    cv2.imwrite(str(tmp_path / 'deep.png'), small.astype(np.uint16) * 257)
    gray = read_image(tmp_path / 'gray.png')
    assert gray.shape == (64, 128, 3) and gray.dtype == np.uint8
    assert (gray == small[..., :1]).all()
    assert (read_image(tmp_path / 'rgba.png') == small).all()
    # 16-bit -> 8-bit by >> 8: v * 257 >> 8 == v.
    assert (read_image(tmp_path / 'deep.png') == small).all()


@pytest.mark.parametrize(
    'content, reason',
    [(b'', 'empty file'), (b'\x89PNG not really', 'cannot decode')],
)
def test_read_image_names_bad_files(tmp_path, content, reason):
    path = tmp_path / 'bad.png'
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value) and info.value.source == str(path)
    with pytest.raises(ImageReadError, match='missing.png'):
        read_image(tmp_path / 'missing.png')


def test_list_images_sorts_naturally_and_skips_others(tmp_path):
    for name in ('f10.png', 'f2.JPG', 'f1.png', '.hidden.png', 'notes.txt'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'sub.png').mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ['f1.png', 'f2.JPG', 'f10.png']
    assert output_names([Path('a.png'), Path('a.jpg'), Path('b.png')]) == [
        'a_png',
        'a_jpg',
        'b',
    ]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InputError, match=str(empty)):
        list_images(empty)


# --- segmentation API -----------------------------------------------------


def test_task_of_config():
    assert cli.task_of_config(Config.fromfile(SEG_CONFIG)) == 'seg'
    assert cli.task_of_config(Config.fromfile(POSE_CONFIG)) == 'pose'
    multitask = Config.fromfile(
        ROOT / 'configs/multitask/segpose_litehrnet18_sample.py'
    )
    with pytest.raises(ValueError, match='--task'):
        cli.task_of_config(multitask)
    assert cli.task_of_config(multitask, 'pose') == 'pose'
    with pytest.raises(ValueError, match='does not fit'):
        cli.task_of_config(Config.fromfile(SEG_CONFIG), 'pose')


def test_batches_mixed_sizes_in_order(inferencer, small):
    gray = small.copy()
    gray[...] = small[..., :1]
    images = [small, small[:20, :17], gray, small[:1, :1], small]
    single = [inferencer.predict([image])[0] for image in images]
    batched = inferencer.predict(images)
    for image, one, many in zip(images, single, batched, strict=True):
        assert label_map(many).shape == image.shape[:2]
        torch.testing.assert_close(
            many.seg_logits.data, one.seg_logits.data, rtol=1e-4, atol=1e-4
        )


def test_draw_uses_the_palette_and_keeps_the_size(inferencer, small):
    meta = inferencer.model.dataset_meta
    assert meta['classes'][0] == 'road'  # the config's Cityscapes meta
    result = inferencer.predict([small])[0]
    outputs = inferencer.draw(small, result)
    mask, overlay = outputs['masks'], outputs['overlays']
    assert mask.shape == overlay.shape == small.shape
    assert colours(mask) <= palette_bgr(meta)
    labels = np.full((5, 6), 255, np.uint8)
    labels[0, 0] = 0
    mask = inferencer.draw(small[:5, :6], labels)['masks']
    assert tuple(mask[0, 0]) == tuple(meta['palette'][0][::-1])
    assert (mask[1:] == 0).all()  # ignore index: no colour
    with pytest.raises(ValueError, match='opacity'):
        SegInferencer(SEG_CONFIG, opacity=0)


@pytest.mark.parametrize('with_labels', [False, True])
def test_draw_a_1x1_image(inferencer, small, with_labels):
    """mmseg's visualizer indexes with a torch mask, which a 1x1 image
    turns into a scalar index (IndexError); our draw avoids it."""
    inferencer.with_labels = with_labels
    try:
        result = inferencer.predict([small[:1, :1]])[0]
        outputs = inferencer.draw(small[:1, :1], result)
    finally:
        inferencer.with_labels = False
    assert outputs['masks'].shape == outputs['overlays'].shape == (1, 1, 3)


def test_slide_mode_on_large_and_tiny_images(inferencer, small):
    whole = inferencer.model.test_cfg
    inferencer.configure_slide((256, 512), (256, 512))
    try:
        large = cv2.resize(small, (1024, 512))
        results = inferencer.predict([large, small[:20, :17]])
        assert label_map(results[0]).shape == (512, 1024)
        assert label_map(results[1]).shape == (20, 17)
        assert inferencer.model.test_cfg.mode == 'slide'
        with pytest.raises(ValueError, match='must not exceed'):
            inferencer.configure_slide((32, 32), (48, 16))
        # Default stride: 2/3 of the window, as mmseg's Cityscapes configs.
        inferencer.configure_slide((512, 1024))
        assert inferencer.model.test_cfg.stride == (341, 683)
    finally:
        inferencer.model.test_cfg = whole


def test_checkpoint_without_meta_loads(tmp_path, inferencer, small):
    ckpt = tmp_path / 'bare.pth'
    torch.save({'state_dict': inferencer.model.state_dict()}, ckpt)
    loaded = SegInferencer(SEG_CONFIG, ckpt, optimize=False)
    meta = loaded.model.dataset_meta
    assert meta['palette'] == inferencer.model.dataset_meta['palette']
    torch.testing.assert_close(
        loaded.predict([small])[0].seg_logits.data,
        inferencer.predict([small])[0].seg_logits.data,
    )


# --- CLI ------------------------------------------------------------------


@pytest.mark.slow
def test_cli_folder_with_edge_cases_and_a_bad_file(tmp_path, small):
    """Subprocess: exit status 1, the bad files named, all others written,
    slide mode with images smaller than the window."""
    folder = tmp_path / 'in'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), small)
    cv2.imwrite(str(folder / 'b_gray.png'), small[..., 0])
    cv2.imwrite(
        str(folder / 'c_rgba.png'), cv2.cvtColor(small, cv2.COLOR_BGR2BGRA)
    )
    cv2.imwrite(str(folder / 'd_16bit.png'), small.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / 'e_tiny.jpg'), small[:20, :17])
    cv2.imwrite(str(folder / 'h_1x1.png'), small[:1, :1])
    (folder / 'f_broken.png').write_bytes(b'\x89PNG\r\n garbage')
    (folder / 'g_empty.jpg').write_bytes(b'')
    (folder / 'notes.txt').write_text('not an image: ignored')
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'litehrnet_seg.apis.cli',
            str(SEG_CONFIG),
            str(folder),
            '--out-dir',
            str(out),
            '--batch-size',
            '2',
            '--save-label-ids',
            '--slide',
            '--crop-size',
            '48',
            '96',
            '--stride',
            '32',
            '64',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'RANDOM weights' in proc.stderr
    for bad in ('f_broken.png', 'g_empty.jpg'):
        assert f'error: {folder / bad}:' in proc.stderr
    assert '6 of 8 inputs written' in proc.stderr
    assert f'failed: {folder / "f_broken.png"} (cannot decode' in proc.stderr
    meta = dataset_meta_from_config(Config.fromfile(SEG_CONFIG))
    palette = {tuple(c[::-1]) for c in meta['palette']}
    for name, size in [
        ('a', (64, 128)),
        ('b_gray', (64, 128)),
        ('c_rgba', (64, 128)),
        ('d_16bit', (64, 128)),
        ('e_tiny', (20, 17)),
        ('h_1x1', (1, 1)),
    ]:
        mask = cv2.imread(str(out / 'masks' / f'{name}.png'))
        overlay = cv2.imread(str(out / 'overlays' / f'{name}.png'))
        ids = cv2.imread(str(out / 'label_ids' / f'{name}.png'), -1)
        assert mask.shape == overlay.shape == (*size, 3), name
        assert ids.shape == size and ids.dtype == np.uint8 and ids.max() < 19
        assert colours(mask) <= palette, name
    # Same pixels in, same prediction out (16-bit scaled by >> 8).
    same = [
        cv2.imread(str(out / 'label_ids' / f'{n}.png'), -1)
        for n in ('a', 'c_rgba', 'd_16bit')
    ]
    assert (same[0] == same[1]).all() and (same[0] == same[2]).all()
    assert not (out / 'masks' / 'f_broken.png').exists()
    assert sorted(p.name for p in (out / 'masks').iterdir()) == [
        'a.png',
        'b_gray.png',
        'c_rgba.png',
        'd_16bit.png',
        'e_tiny.png',
        'h_1x1.png',
    ]


@pytest.mark.slow
def test_cli_video_round_trip(tmp_path, small, capsys):
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*'mp4v'), 5, (128, 64)
    )
    for shift in range(3):
        writer.write(np.roll(small, 8 * shift, axis=1))
    writer.release()
    out = tmp_path / 'out'
    code = cli.main(
        [str(SEG_CONFIG), str(video), '--out-dir', str(out)]
        + ['--batch-size', '2', '--opacity', '1']
    )
    assert code == 0, capsys.readouterr().err
    assert '3 of 3 frames written' in capsys.readouterr().out
    capture = cv2.VideoCapture(str(out / 'overlays' / 'clip.mp4'))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 3 and frames[0].shape == (64, 128, 3)
    # opacity 1: the frames are colour masks (up to mp4 compression).
    assert not np.allclose(frames[0], np.roll(small, 0, axis=1), atol=20)
    # No per-frame files unless --save-frames.
    assert sorted(p.name for p in out.rglob('*')) == ['clip.mp4', 'overlays']


def test_cli_pose_draws_skeletons(tmp_path, capsys):
    folder = tmp_path / 'people'
    folder.mkdir()
    for name in ('000000196141.jpg', '000000040083.jpg'):
        (folder / name).write_bytes((COCO / name).read_bytes())
    boxes = tmp_path / 'boxes.json'
    boxes.write_text(
        json.dumps({'000000196141.jpg': [[248, 74, 418, 375], [0, 0, 99, 99]]})
    )
    out = tmp_path / 'out'
    code = cli.main(
        [str(POSE_CONFIG), str(folder), '--out-dir', str(out)]
        + ['--bboxes', str(boxes), '--score-thr', '0']
    )
    assert code == 0, capsys.readouterr().err
    for name, people in (('000000196141', 2), ('000000040083', 1)):
        image = cv2.imread(str(folder / f'{name}.jpg'))
        overlay = cv2.imread(str(out / 'overlays' / f'{name}.png'))
        assert overlay.shape == image.shape
        assert (overlay != image).any()  # something was drawn
        result = json.loads((out / 'keypoints' / f'{name}.json').read_text())
        assert len(result['people']) == people
        assert len(result['people'][0]['keypoints']) == 17
    first = json.loads((out / 'keypoints' / '000000196141.json').read_text())
    assert first['people'][0]['bbox'] == [248, 74, 418, 375]


def test_cli_input_errors(tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    base = [str(SEG_CONFIG), '--out-dir', str(tmp_path / 'out')]
    assert cli.main([*base, str(empty)]) == 2
    assert f'input folder {empty} holds no image files' in (
        capsys.readouterr().err
    )
    missing = tmp_path / 'nope.png'
    assert cli.main([*base, str(missing)]) == 2
    assert f'input {missing} does not exist' in capsys.readouterr().err
    notes = tmp_path / 'notes.txt'
    notes.write_text('x')
    assert cli.main([*base, str(notes)]) == 2
    assert "unknown file type '.txt'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main([*base, str(notes), '--crop-size', '32', '32'])
    assert info.value.code == 2
    assert '--crop-size and --stride need --slide' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(
            [*base, str(notes), '--slide', '--crop-size', '32', '32']
            + ['--stride', '48', '16']
        )
    assert 'must not exceed --crop-size' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
    taken = tmp_path / 'taken'
    taken.write_text('a file')
    with pytest.raises(SystemExit) as info:
        cli.main([str(SEG_CONFIG), str(notes), '--out-dir', str(taken)])
    assert info.value.code == 2
    assert f'--out-dir {taken} is a file' in capsys.readouterr().err


@pytest.mark.slow
def test_entry_points():
    """The console script (setup.py entry_points) and tools/inference.py
    run the same CLI."""
    script = Path(sys.executable).parent / 'litehrnet-infer'
    assert script.is_file(), 'console script missing: pip install -e .'
    tool = [sys.executable, str(ROOT / 'tools/inference.py')]
    for command in ([str(script)], tool):
        proc = subprocess.run(
            [*command, '--help'],
            cwd='/',
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert '--no-optimize' in proc.stdout
        assert 'litehrnet-infer' in proc.stdout
