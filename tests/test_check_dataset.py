"""Dataset integrity checks (litehrnet_seg.datasets.integrity) and the
tools/misc/check_dataset.py command line.

Broken copies of the bundled samples (tests/data/{cityscapes,coco,mpii})
are made in ``tmp_path``; every finding must name the offending file.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from litehrnet_seg.datasets.integrity import (
    Issue,
    Report,
    check_dataset,
    detect_dataset_type,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / 'tests' / 'data'
TOOL = REPO / 'tools' / 'misc' / 'check_dataset.py'
FRAME = 'frankfurt_000000_000294'
CITY = Path('val') / 'frankfurt'


def check(root: Path, **kwargs) -> Report:
    return check_dataset(str(root), progress=False, **kwargs)


def only(report: Report, kind: str) -> Issue:
    """The single error of ``report``, which must be of ``kind``."""
    assert len(report.errors) == 1, report.summary()
    issue = report.errors[0]
    assert issue.kind == kind, report.summary()
    return issue


# ------------------------------------------------------------- fixtures


def cs_image(root: Path) -> Path:
    return root / 'leftImg8bit' / CITY / f'{FRAME}_leftImg8bit.png'


def cs_label(root: Path, kind: str = 'labelTrainIds') -> Path:
    return root / 'gtFine' / CITY / f'{FRAME}_gtFine_{kind}.png'


@pytest.fixture
def cityscapes(tmp_path) -> Path:
    """The bundled frame, with its labelTrainIds map (the reference)."""
    root = tmp_path / 'cityscapes'
    shutil.copytree(DATA / 'cityscapes', root)
    reference = cs_label(root, 'labelTrainIds_reference')
    reference.rename(cs_label(root))
    return root


@pytest.fixture
def coco(tmp_path) -> Path:
    root = tmp_path / 'coco'
    shutil.copytree(DATA / 'coco', root)
    return root


@pytest.fixture
def mpii(tmp_path) -> Path:
    root = tmp_path / 'mpii'
    shutil.copytree(DATA / 'mpii', root)
    return root


def edit_json(path: Path, edit) -> dict:
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return content


# ------------------------------------------------------------- clean data


@pytest.mark.parametrize('name', ['cityscapes', 'coco', 'mpii'])
def test_bundled_samples_are_clean(name):
    report = check(DATA / name)
    assert report.dataset_type == name
    assert report.ok, report.summary()
    if name == 'cityscapes':
        # The bundle has labelIds only: the trainIds map is generated.
        assert [i.kind for i in report.warnings] == ['missing_train_ids']
        assert str(cs_image(DATA / name)) in report.warnings[0].message
    else:
        assert report.issues == []


def test_cityscapes_with_train_ids_has_no_finding(cityscapes):
    report = check(cityscapes, split='val')
    assert report.issues == [], report.summary()
    # image, labelTrainIds, labelIds, instanceIds
    assert report.num_checked == 4


def test_detect_dataset_type(tmp_path):
    for name in ('cityscapes', 'coco', 'mpii'):
        assert detect_dataset_type(str(DATA / name)) == name
    with pytest.raises(ValueError, match=str(tmp_path)):
        detect_dataset_type(str(tmp_path))


def test_missing_folder_is_named(tmp_path):
    missing = tmp_path / 'nope'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        check(missing)


# ------------------------------------------------------------- cityscapes


def test_image_without_label(cityscapes):
    for kind in ('labelTrainIds', 'labelIds', 'instanceIds'):
        cs_label(cityscapes, kind).unlink()
    issue = only(check(cityscapes), 'missing_label')
    assert issue.path == str(cs_image(cityscapes))
    assert str(cs_image(cityscapes)) in issue.message
    assert str(cs_label(cityscapes)) in issue.message  # what was expected


def test_label_without_image(cityscapes):
    cs_image(cityscapes).unlink()
    report = check(cityscapes)
    # The split has no image left at all: reported too.
    assert report.counts() == {'missing_image': 1, 'no_samples': 1}
    (issue,) = [i for i in report.errors if i.kind == 'missing_image']
    assert issue.path == str(cs_label(cityscapes))
    assert str(cs_label(cityscapes)) in issue.message
    assert str(cs_image(cityscapes)) in issue.message


def test_corrupt_image(cityscapes):
    cs_image(cityscapes).write_bytes(b'garbage, not a png')
    issue = only(check(cityscapes), 'unreadable_image')
    assert issue.path == str(cs_image(cityscapes))
    assert f'Cannot decode image file {cs_image(cityscapes)}' in (
        issue.message
    )


def test_truncated_label_png(cityscapes):
    label = cs_label(cityscapes)
    label.write_bytes(label.read_bytes()[:200])
    issue = only(check(cityscapes), 'unreadable_label')
    assert f'Cannot decode label file {label}' in issue.message


@pytest.mark.parametrize('kind', ['labelTrainIds', 'labelIds'])
def test_label_id_outside_valid_set(cityscapes, kind):
    label = cs_label(cityscapes, kind)
    array = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    array[5, 10:14] = 50
    assert cv2.imwrite(str(label), array)
    issue = only(check(cityscapes), 'invalid_label_id')
    assert issue.path == str(label)
    assert f'label {label} holds invalid values 50 (4 px)' in issue.message
    if kind == 'labelTrainIds':
        assert 'train ids 0..18 and the ignore index 255' in issue.message
    else:
        assert 'cityscapesscripts' in issue.message


def test_resized_label(cityscapes):
    label = cs_label(cityscapes)
    array = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    small = cv2.resize(array, (128, 64), interpolation=cv2.INTER_NEAREST)
    assert cv2.imwrite(str(label), small)
    issue = only(check(cityscapes), 'size_mismatch')
    assert f'label {label} is 64x128 but image' in issue.message
    assert f'{cs_image(cityscapes)} is 128x256 (HxW)' in issue.message


def test_colour_label(cityscapes):
    label = cs_label(cityscapes)
    assert cv2.imwrite(str(label), np.zeros((128, 256, 3), np.uint8))
    issue = only(check(cityscapes), 'bad_label_format')
    assert str(label) in issue.message and 'single-channel' in issue.message


def test_polygon_json_size_and_label(cityscapes):
    polygons = cs_label(cityscapes, 'polygons').with_suffix('.json')
    objects = [
        {'label': 'road', 'polygon': [[0, 0], [5, 0], [5, 5]]},
        {'label': 'cargroup', 'polygon': [[0, 0], [5, 0], [5, 5]]},
        {'label': 'spaceship', 'polygon': [[0, 0], [5, 0], [5, 5]]},
    ]
    polygons.write_text(
        json.dumps({'imgHeight': 128, 'imgWidth': 200, 'objects': objects})
    )
    report = check(cityscapes)
    kinds = sorted(i.kind for i in report.errors)
    assert kinds == ['invalid_label_id', 'size_mismatch'], report.summary()
    for issue in report.errors:
        assert str(polygons) in issue.message
    bad = next(i for i in report.errors if i.kind == 'invalid_label_id')
    assert bad.field == 'objects[2].label' and 'spaceship' in bad.message


def test_missing_split_folder(cityscapes):
    report = check(cityscapes, split='train')
    issue = only(report, 'no_samples')
    assert str(cityscapes / 'leftImg8bit' / 'train') in issue.message


# ------------------------------------------------------------------- coco

ANN_ID = 442619  # first annotation of test_coco.json (image 785)


def test_coco_keypoints_truncated_to_50_values(coco):
    ann_file = coco / 'test_coco.json'

    def truncate(content):
        content['annotations'][0]['keypoints'] = content['annotations'][0][
            'keypoints'
        ][:50]

    edit_json(ann_file, truncate)
    issue = only(check(coco), 'bad_keypoints')
    assert issue.path == str(ann_file)
    assert issue.field == f'annotation {ANN_ID}: keypoints'
    assert issue.message == (
        f'{ann_file}: annotation id {ANN_ID}: field "keypoints" has 50 '
        'values, expected 3 * 17 = 51 (x, y, v per keypoint)'
    )


@pytest.mark.parametrize('value', [float('nan'), 'x', None])
def test_coco_keypoint_not_a_number(coco, value):
    ann_file = coco / 'test_coco.json'
    edit_json(
        ann_file,
        lambda c: c['annotations'][0]['keypoints'].__setitem__(4, value),
    )
    issue = only(check(coco), 'bad_value')
    assert f'{ann_file}: annotation id {ANN_ID}: field "keypoints"' in (
        issue.message
    )
    assert 'indices [4]' in issue.message


def test_coco_malformed_bbox(coco):
    ann_file = coco / 'test_coco.json'
    edit_json(ann_file, lambda c: c['annotations'][0].update(bbox=[1, 2, 3]))
    issue = only(check(coco), 'bad_bbox')
    assert f'{ann_file}: annotation id {ANN_ID}: field "bbox"' in (
        issue.message
    )


def test_coco_annotation_pointing_to_missing_image(coco):
    ann_file = coco / 'test_coco.json'
    edit_json(ann_file, lambda c: c['annotations'][0].update(image_id=123))
    issue = only(check(coco), 'missing_image')
    assert issue.message == (
        f'{ann_file}: annotation id {ANN_ID}: field "image_id" (123) names '
        'no image in "images"'
    )


def test_coco_image_file_missing(coco):
    image = coco / '000000000785.jpg'
    image.unlink()
    issue = only(check(coco), 'missing_image')
    assert issue.path == str(image)
    assert f'image {image} does not exist' in issue.message
    assert 'test_coco.json: image id 785' in issue.message


def test_coco_corrupt_image(coco):
    image = coco / '000000040083.jpg'
    image.write_bytes(image.read_bytes()[:3000])  # truncated jpeg
    issue = only(check(coco), 'unreadable_image')
    assert f'Cannot decode image file {image}' in issue.message


def test_coco_image_size_differs_from_json(coco):
    edit_json(
        coco / 'test_coco.json', lambda c: c['images'][0].update(width=600)
    )
    issue = only(check(coco), 'size_mismatch')
    assert str(coco / '000000000785.jpg') in issue.message
    assert 'is 640x425 (WxH)' in issue.message and 'width=600' in issue.message


# ------------------------------------------------------------------- mpii


@pytest.mark.parametrize(
    'field, value, expected',
    [
        ('joints', [[1.0, 2.0]] * 15, 'shape (15, 2), expected (16, 2)'),
        ('joints_vis', [1] * 15, 'shape (15,), expected (16,)'),
    ],
)
def test_mpii_joints_of_length_15(mpii, field, value, expected):
    ann_file = mpii / 'test_mpii.json'
    content = edit_json(ann_file, lambda c: c[2].__setitem__(field, value))
    issue = only(check(mpii), 'bad_keypoints')
    image = content[2]['image']
    assert issue.message == (
        f'{ann_file}: entry 2 ({image}): field "{field}" has {expected}'
    )


def test_mpii_nan_joint(mpii):
    ann_file = mpii / 'test_mpii.json'
    edit_json(ann_file, lambda c: c[1]['joints'][3].__setitem__(0, 'nan'))
    issue = only(check(mpii), 'bad_value')
    assert f'{ann_file}: entry 1' in issue.message
    assert 'field "joints"' in issue.message and 'joints [3]' in issue.message


def test_mpii_missing_image(mpii):
    image = mpii / '051423444.jpg'
    image.unlink()
    issue = only(check(mpii), 'missing_image')
    assert issue.message == (
        f'image {image} does not exist (named by entries [2] of '
        f'{mpii / "test_mpii.json"})'
    )


# ------------------------------------------------------------ report, CLI


def test_report_summary_and_json(cityscapes, tmp_path):
    cs_image(cityscapes).write_bytes(b'')
    report = check(cityscapes)
    assert report.counts() == {'unreadable_image': 1}
    summary = report.summary(max_listed=0)
    assert '1 errors' in summary and 'unreadable_image: 1' in summary
    out = tmp_path / 'report.json'
    report.dump(str(out))
    saved = json.loads(out.read_text())
    assert saved['num_errors'] == 1
    assert saved['issues'][0]['path'] == str(cs_image(cityscapes))
    assert 'empty' in saved['issues'][0]['message']


def _load_tool():
    spec = importlib.util.spec_from_file_location('_check_dataset', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_in_process_clean_and_bad_usage(tmp_path, capsys):
    tool = _load_tool()
    assert tool.main([str(DATA / 'mpii'), '--no-progress']) == 0
    assert '0 errors' in capsys.readouterr().out
    # Warnings only: clean, unless --strict.
    args = [str(DATA / 'cityscapes'), '--no-progress']
    assert tool.main(args) == 0
    assert tool.main([*args, '--strict']) == 1
    missing = tmp_path / 'no_such_dataset'
    with pytest.raises(SystemExit) as exc:
        tool.main([str(missing)])
    assert exc.value.code == 2
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # undetectable layout
        tool.main([str(tmp_path)])
    assert exc.value.code == 2
    assert 'pass --type' in capsys.readouterr().err


def test_cli_reports_errors_with_exit_1(coco, tmp_path):
    (coco / '000000196141.jpg').write_bytes(b'not a jpeg')
    out = tmp_path / 'report.json'
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            str(coco),
            '--nproc',
            '2',
            '--out',
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'unreadable_image: 1' in proc.stdout
    assert str(coco / '000000196141.jpg') in proc.stdout
    assert 'coco images' in proc.stderr  # the progress bar
    saved = json.loads(out.read_text())
    assert saved['counts'] == {'unreadable_image': 1}
