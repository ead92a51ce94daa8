"""Tests for ``tools/dataset_converters/cityscapes.py``."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label, name2label
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / 'tests' / 'data' / 'cityscapes'
FRAME = 'frankfurt_000000_000294'
FRAME_DIR = Path('gtFine') / 'val' / 'frankfurt'
LABEL_IDS = FRAME_DIR / f'{FRAME}_gtFine_labelIds.png'
TRAIN_IDS = FRAME_DIR / f'{FRAME}_gtFine_labelTrainIds.png'
REFERENCE = FRAME_DIR / f'{FRAME}_gtFine_labelTrainIds_reference.png'
IMAGE = Path('leftImg8bit') / 'val' / 'frankfurt' / f'{FRAME}_leftImg8bit.png'
VALID_TRAIN_IDS = set(range(19)) | {255}


def _load_converter():
    # Registered in sys.modules so that worker processes can unpickle
    # the module-level task function.
    name = 'litehrnet_tools_cityscapes_converter'
    if name not in sys.modules:
        path = REPO / 'tools' / 'dataset_converters' / 'cityscapes.py'
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


converter = _load_converter()


@pytest.fixture
def root(tmp_path):
    dst = tmp_path / 'cityscapes'
    shutil.copytree(DATA, dst)
    assert not (dst / TRAIN_IDS).exists()
    return dst


def _read(path):
    return np.array(Image.open(path))


def _expected_train_ids(label_ids):
    """Map labelIds via cityscapesscripts' table, independently of the LUT."""
    out = np.full(label_ids.shape, -1, dtype=np.int64)
    for label_id in np.unique(label_ids):
        train_id = id2label[int(label_id)].trainId
        out[label_ids == label_id] = 255 if train_id in (-1, 255) else train_id
    assert (out >= 0).all()
    return out


def test_bundled_frame_from_labelids(root, capsys):
    assert converter.main([str(root)]) == 0
    out = _read(root / TRAIN_IDS)
    label_ids = _read(root / LABEL_IDS)
    image = _read(root / IMAGE)

    assert out.dtype == np.uint8
    assert out.shape == image.shape[:2] == (128, 256)
    assert set(np.unique(out).tolist()) <= VALID_TRAIN_IDS
    # Some real classes, not only ignore.
    assert len(set(np.unique(out).tolist()) - {255}) >= 5
    np.testing.assert_array_equal(out, _expected_train_ids(label_ids))

    agreement = float((out == _read(root / REFERENCE)).mean())
    print(f'agreement with reference: {agreement:.6f}')
    assert 0.995 <= agreement <= 1.0

    assert (root / 'val.txt').read_text() == f'frankfurt/{FRAME}\n'
    assert not (root / 'train.txt').exists()
    assert not (root / 'test.txt').exists()
    summary = capsys.readouterr().out
    assert 'from json: 0' in summary
    assert 'from labelIds: 1' in summary
    assert 'val=1' in summary


def test_out_dir_receives_split_lists(root, tmp_path):
    out_dir = tmp_path / 'lists'
    assert converter.main([str(root), '-o', str(out_dir)]) == 0
    assert (out_dir / 'val.txt').read_text().splitlines() == [
        f'frankfurt/{FRAME}'
    ]
    assert not (root / 'val.txt').exists()
    # Labels still go next to their source annotations.
    assert (root / TRAIN_IDS).is_file()


def test_labelids_to_trainids_lut():
    ids = np.arange(256, dtype=np.uint8)
    out = converter.labelids_to_trainids(ids)
    for label_id in range(256):
        label = id2label.get(label_id)
        if label is None or label.trainId in (-1, 255):
            assert out[label_id] == 255, label_id
        else:
            assert out[label_id] == label.trainId, label_id
    assert out[name2label['road'].id] == 0
    assert out[name2label['bicycle'].id] == 18
    # Out-of-range ids (e.g. from a 16-bit map) are ignored.
    wide = np.array([-1, 7, 300], dtype=np.int32)
    np.testing.assert_array_equal(
        converter.labelids_to_trainids(wide), [255, 0, 255]
    )
    with pytest.raises(TypeError):
        converter.labelids_to_trainids(np.zeros(3, dtype=np.float32))


def test_polygon_json_is_preferred(root):
    height, width = 32, 48
    polygon = [[8, 4], [40, 4], [40, 24], [8, 24]]
    annotation = {
        'imgHeight': height,
        'imgWidth': width,
        'objects': [{'label': 'road', 'polygon': polygon}],
    }
    json_file = root / FRAME_DIR / f'{FRAME}_gtFine_polygons.json'
    json_file.write_text(json.dumps(annotation))

    assert converter.main([str(root)]) == 0
    out = _read(root / TRAIN_IDS)
    # The json's size, not the labelIds png's (128x256): json was used.
    assert out.shape == (height, width)
    inside = np.zeros((height, width), dtype=bool)
    inside[4:25, 8:41] = True
    assert (out[inside] == 0).all()
    assert (out[~inside] == 255).all()
    assert (root / 'val.txt').read_text() == f'frankfurt/{FRAME}\n'


def test_json_only_frame(root):
    split_dir = root / 'gtFine' / 'train' / 'aachen'
    split_dir.mkdir(parents=True)
    annotation = {
        'imgHeight': 8,
        'imgWidth': 8,
        'objects': [{'label': 'car', 'polygon': [[0, 0], [7, 0], [7, 7]]}],
    }
    stem = 'aachen_000000_000019'
    (split_dir / f'{stem}_gtFine_polygons.json').write_text(
        json.dumps(annotation)
    )
    assert converter.main([str(root)]) == 0
    out = _read(split_dir / f'{stem}_gtFine_labelTrainIds.png')
    assert set(np.unique(out).tolist()) == {name2label['car'].trainId, 255}
    assert (root / 'train.txt').read_text() == f'aachen/{stem}\n'
    assert (root / 'val.txt').read_text() == f'frankfurt/{FRAME}\n'


def test_missing_root(tmp_path):
    missing = tmp_path / 'does_not_exist'
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(missing)])
    assert str(missing) in str(exc_info.value.code)


def test_root_without_gt_dir(tmp_path):
    (tmp_path / 'leftImg8bit').mkdir()
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(tmp_path)])
    message = str(exc_info.value.code)
    assert str(tmp_path / 'gtFine') in message
    assert 'not found' in message


def test_empty_gt_dir(tmp_path):
    (tmp_path / 'gtFine' / 'val').mkdir(parents=True)
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(tmp_path)])
    assert 'no annotations found' in str(exc_info.value.code)


def test_corrupt_labelids(root):
    bad = root / LABEL_IDS
    bad.write_bytes(b'\x89PNG\r\n\x1a\n this is not a png')
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(root)])
    assert str(bad) in str(exc_info.value.code)
    assert not (root / TRAIN_IDS).exists()
    assert not (root / 'val.txt').exists()


def test_frame_without_sources(root):
    # A valid second frame: checked up front, so nothing gets written.
    good = root / FRAME_DIR / 'frankfurt_000000_000576_gtFine_labelIds.png'
    shutil.copy(root / LABEL_IDS, good)
    (root / LABEL_IDS).unlink()
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(root)])
    message = str(exc_info.value.code)
    assert FRAME in message
    assert 'neither' in message
    assert 'frankfurt_000000_000576' not in message
    assert list(root.rglob('*_labelTrainIds.png')) == []
    assert not (root / 'val.txt').exists()


@pytest.mark.slow
def test_cli_exit_code(tmp_path):
    script = REPO / 'tools' / 'dataset_converters' / 'cityscapes.py'
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / 'missing')],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert str(tmp_path / 'missing') in proc.stderr


def test_nproc_2_matches_nproc_1(root, tmp_path, monkeypatch):
    other = tmp_path / 'other'
    shutil.copytree(root, other)
    # A second, different frame, so that both workers get work and a
    # mix-up of results between frames would show.
    second = 'frankfurt_000000_000576'
    flipped = Image.fromarray(_read(root / LABEL_IDS)[:, ::-1].copy())
    for base in (root, other):
        flipped.save(base / FRAME_DIR / f'{second}_gtFine_labelIds.png')

    pool_calls = []

    def spy(func, tasks, nproc, **kwargs):
        pool_calls.append(nproc)
        return track_parallel_progress(func, tasks, nproc, **kwargs)

    track_parallel_progress = converter.track_parallel_progress
    monkeypatch.setattr(converter, 'track_parallel_progress', spy)
    assert converter.main([str(root), '--nproc', '1']) == 0
    assert pool_calls == []
    assert converter.main([str(other), '--nproc', '2']) == 0
    assert pool_calls == [2]
    for stem in (FRAME, second):
        name = FRAME_DIR / f'{stem}_gtFine_labelTrainIds.png'
        np.testing.assert_array_equal(_read(root / name), _read(other / name))
    first_out = _read(other / TRAIN_IDS)
    second_out = _read(
        other / FRAME_DIR / f'{second}_gtFine_labelTrainIds.png'
    )
    assert not np.array_equal(first_out, second_out)
    np.testing.assert_array_equal(second_out, first_out[:, ::-1])
    assert (root / 'val.txt').read_text() == (other / 'val.txt').read_text()
    assert (other / 'val.txt').read_text().splitlines() == [
        f'frankfurt/{FRAME}',
        f'frankfurt/{second}',
    ]


@pytest.mark.parametrize(
    'content, reason',
    [
        ('{"imgHeight": 8, "imgWidth"', 'JSONDecodeError'),
        (
            json.dumps(
                {
                    'imgHeight': 8,
                    'imgWidth': 8,
                    'objects': [
                        {'label': 'spaceship', 'polygon': [[0, 0], [7, 7]]}
                    ],
                }
            ),
            'SystemExit',
        ),
    ],
)
def test_bad_polygon_json_is_named(root, content, reason):
    bad = root / FRAME_DIR / f'{FRAME}_gtFine_polygons.json'
    bad.write_text(content)
    with pytest.raises(SystemExit) as exc_info:
        converter.main([str(root)])
    message = str(exc_info.value.code)
    assert f'cannot convert polygon json {bad}: {reason}' in message
    assert not (root / 'val.txt').exists()
