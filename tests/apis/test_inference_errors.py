"""Bad inputs to the inferencers and the inference CLI: wrong, truncated
or empty checkpoints, a directory as checkpoint, corrupt images in pose
runs, reversed boxes. Each is refused with a message naming the file or
box; a checkpoint refusal writes nothing."""

import json
from pathlib import Path

import cv2
import pytest
import torch

from litehrnet_seg.apis import PoseInferencer, SegInferencer, check_boxes, cli
from litehrnet_seg.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    build_model,
)

ROOT = Path(__file__).resolve().parents[2]
SEG18 = str(
    ROOT / 'configs/litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-'
    'sample-128x256.py'
)
SEG30 = str(
    ROOT / 'configs/litehrnet/fcn-concat_litehrnet30_4xb4-80k_cityscapes-'
    '512x1024.py'
)
POSE18 = str(
    ROOT / 'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-'
    '256x192.py'
)
FRAME = str(
    ROOT / 'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)
PERSON = ROOT / 'tests/data/coco/000000196141.jpg'


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict:
    """Random-weight checkpoints without meta: L30 seg, L18 seg, L18 pose
    (the pose one as a converted mmpose 0.x file: no dataset_meta)."""
    root = tmp_path_factory.mktemp('ckpt')
    paths = {}
    for name, config in (
        ('seg30', SEG30),
        ('seg18', SEG18),
        ('pose18', POSE18),
    ):
        model = build_model(config)
        paths[name] = str(root / f'{name}.pth')
        torch.save({'state_dict': model.state_dict()}, paths[name])
    return paths


@pytest.mark.slow
@pytest.mark.parametrize(
    'config, wrong',
    [(SEG18, 'seg30'), (SEG18, 'pose18'), (POSE18, 'seg18')],
    ids=['L30-into-L18', 'pose-into-seg', 'seg-into-pose'],
)
def test_cli_refuses_a_checkpoint_of_another_arch_or_task(
    tmp_path, capsys, checkpoints, config, wrong
):
    out = tmp_path / 'out'
    code = cli.main(
        [config, FRAME, '--out-dir', str(out)]
        + ['--checkpoint', checkpoints[wrong]]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert checkpoints[wrong] in err and 'key' in err, err
    assert not out.exists()  # nothing written


def test_inferencers_raise_on_a_mismatch(checkpoints):
    with pytest.raises(CheckpointMismatchError, match='seg30.pth'):
        SegInferencer(SEG18, checkpoints['seg30'])
    with pytest.raises(CheckpointMismatchError, match='seg18.pth'):
        PoseInferencer(POSE18, checkpoints['seg18'])
    with pytest.raises(CheckpointMismatchError, match='pose18.pth'):
        build_model(SEG18, checkpoints['pose18'])


def test_pose_checkpoint_without_dataset_meta_uses_the_config(checkpoints):
    """Flip test and skeleton need flip_indices / skeleton_links: from the
    config's dataset when the checkpoint's meta has none."""
    inferencer = PoseInferencer(POSE18, checkpoints['pose18'])
    meta = inferencer.model.dataset_meta
    assert len(meta['flip_indices']) == 17 and meta['skeleton_links']
    image = cv2.imread(str(PERSON))
    samples = inferencer.predict([image], [[[248, 74, 418, 375]]])[0]
    assert samples[0].pred_instances.keypoints.shape == (1, 17, 2)
    people = inferencer(image)['predictions'][0]
    assert len(people) == 1 and len(people[0]['keypoints']) == 17


@pytest.mark.slow
@pytest.mark.parametrize(
    'content, reason',
    [(None, 'is a directory'), (b'', 'empty'), ('cut', 'truncated')],
)
def test_cli_names_an_unreadable_checkpoint(
    tmp_path, capsys, checkpoints, content, reason
):
    path = tmp_path / 'bad.pth'
    if content is None:
        path.mkdir()
    elif content == 'cut':
        data = Path(checkpoints['seg18']).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    out = tmp_path / 'out'
    code = cli.main(
        [SEG18, FRAME, '--out-dir', str(out)] + ['--checkpoint', str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and reason in err, err
    assert 'config' not in err.split(str(path))[0]  # not blamed on it
    assert not out.exists()
    with pytest.raises(CheckpointError, match=reason):
        SegInferencer(SEG18, str(path))


def test_pose_cli_names_a_corrupt_image_and_goes_on(tmp_path, capsys):
    folder = tmp_path / 'people'
    folder.mkdir()
    (folder / 'a_person.jpg').write_bytes(PERSON.read_bytes())
    (folder / 'b_corrupt.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    out = tmp_path / 'out'
    code = cli.main([POSE18, str(folder), '--out-dir', str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f'error: {folder / "b_corrupt.jpg"}: cannot decode' in err
    assert (out / 'keypoints' / 'a_person.json').is_file()
    assert not (out / 'keypoints' / 'b_corrupt.json').exists()


def test_reversed_boxes_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match=r'box \[50.0, 0.0, 10.0, 20.0\]'):
        check_boxes([50, 0, 10, 20], 'test boxes')
    boxes = tmp_path / 'boxes.json'
    boxes.write_text(json.dumps({'person.jpg': [[50, 60, 10, 90]]}))
    code = cli.main(
        [POSE18, str(PERSON), '--out-dir', str(tmp_path / 'out')]
        + ['--bboxes', str(boxes)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert str(boxes) in err and '[50.0, 60.0, 10.0, 90.0]' in err
    assert 'reversed' in err
    assert not (tmp_path / 'out').exists()
