"""tools/misc/check_dataset.py: the configured datasets, checked offline.

The project's sample configs are pointed (``--cfg-options``) at broken
copies of the bundled samples (tests/data/{cityscapes,coco,mpii}) in
``tmp_path``; every finding must name the offending file.
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

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / 'tests' / 'data'
TOOL = REPO / 'tools' / 'misc' / 'check_dataset.py'
CONFIGS = {
    'cityscapes': REPO / 'configs/litehrnet/'
    'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py',
    'coco': REPO
    / 'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-'
    '256x192.py',
    'mpii': REPO
    / 'configs/pose/topdown-heatmap_litehrnet18_1xb5-120i_mpii-sample-'
    '256x256.py',
}
FRAME = 'frankfurt_000000_000294'
CITY = Path('val') / 'frankfurt'


def _load_tool():
    spec = importlib.util.spec_from_file_location('_check_dataset', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def check(name: str, root: Path, *extra: str, split='train'):
    """Run the tool on the sample config of ``name`` over ``root``.

    Returns:
        tuple: exit status, the findings (dicts) from ``--out``.
    """
    out = root.parent / 'report.json'
    key = f'{split}_dataloader.dataset.data_root'
    args = [str(CONFIGS[name]), '--split', split, '--out', str(out)]
    code = tool.main([*args, '--cfg-options', f'{key}={root}/', *extra])
    return code, json.loads(out.read_text())['errors']


def only(found: list, kind: str) -> dict:
    """The single finding, which must be of ``kind``."""
    assert [f['kind'] for f in found] == [kind], found
    return found[0]


def edit_json(path: Path, edit) -> dict:
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return content


# ------------------------------------------------------------- cityscapes


def cs_image(root: Path) -> Path:
    return root / 'leftImg8bit' / CITY / f'{FRAME}_leftImg8bit.png'


def cs_label(root: Path) -> Path:
    return root / 'gtFine' / CITY / f'{FRAME}_gtFine_labelTrainIds.png'


@pytest.fixture
def cityscapes(tmp_path) -> Path:
    """The bundled frame, with its labelTrainIds map (the reference)."""
    root = tmp_path / 'cityscapes'
    shutil.copytree(DATA / 'cityscapes', root)
    reference = (
        root
        / 'gtFine'
        / CITY
        / (f'{FRAME}_gtFine_labelTrainIds_reference.png')
    )
    reference.rename(cs_label(root))
    return root


@pytest.mark.parametrize('split', ['train', 'val'])
def test_clean_cityscapes(cityscapes, capsys, split):
    assert check('cityscapes', cityscapes, split=split) == (0, [])
    assert '1 samples checked, 0 bad' in capsys.readouterr().out


def test_image_without_label(cityscapes):
    cs_label(cityscapes).unlink()
    code, found = check('cityscapes', cityscapes)
    assert code == 1
    issue = only(found, 'missing_label')
    assert issue['path'] == str(cs_image(cityscapes))
    assert issue['message'] == (
        f'image {cs_image(cityscapes)} has no label map; expected '
        f'{cs_label(cityscapes)}'
    )


def test_listed_image_missing(cityscapes):
    (cityscapes / 'val.txt').write_text(f'frankfurt/{FRAME}\n')
    cs_image(cityscapes).unlink()
    ann = f'train_dataloader.dataset.ann_file={cityscapes}/val.txt'
    issue = only(check('cityscapes', cityscapes, ann)[1], 'missing_image')
    assert (
        f'image {cs_image(cityscapes)} listed in ann_file'
        in (issue['message'])
    )


def test_garbage_image(cityscapes):
    cs_image(cityscapes).write_bytes(b'garbage, not a png')
    issue = only(check('cityscapes', cityscapes)[1], 'unreadable_image')
    assert (
        f'Cannot decode image file {cs_image(cityscapes)}'
        in (issue['message'])
    )


def test_truncated_label(cityscapes):
    label = cs_label(cityscapes)
    label.write_bytes(label.read_bytes()[:200])
    issue = only(check('cityscapes', cityscapes)[1], 'unreadable_label')
    assert f'Cannot decode label file {label}' in issue['message']


def test_invalid_label_id(cityscapes, capsys):
    label = cs_label(cityscapes)
    array = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    array[5, 10:14] = 50
    assert cv2.imwrite(str(label), array)
    issue = only(check('cityscapes', cityscapes)[1], 'invalid_label_id')
    assert issue['path'] == str(label)
    assert issue['message'].startswith(
        f'label {label} (image {cs_image(cityscapes)}) holds invalid values '
        '50 (4 px); valid are train ids 0..18 and the ignore index 255'
    )
    out = capsys.readouterr().out
    assert f'  invalid_label_id: label {label} (image' in out


def test_resized_label(cityscapes):
    label = cs_label(cityscapes)
    array = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    small = cv2.resize(array, (128, 64), interpolation=cv2.INTER_NEAREST)
    assert cv2.imwrite(str(label), small)
    issue = only(check('cityscapes', cityscapes)[1], 'size_mismatch')
    assert issue['message'].startswith(
        f'label {label} is 64x128 but image {cs_image(cityscapes)} is '
        '128x256 (HxW)'
    )


def test_colour_label(cityscapes):
    label = cs_label(cityscapes)
    assert cv2.imwrite(str(label), np.zeros((128, 256, 3), np.uint8))
    issue = only(check('cityscapes', cityscapes)[1], 'bad_label_format')
    assert f'label {label} has shape (128, 256, 3)' in issue['message']
    assert 'single-channel' in issue['message']


def test_unbuildable_dataset_names_the_folder(tmp_path, capsys):
    missing = tmp_path / 'nope'
    key = 'train_dataloader.dataset.data_root'
    args = [str(CONFIGS['cityscapes']), '--cfg-options', f'{key}={missing}']
    assert tool.main(args) == 1
    assert str(missing / 'leftImg8bit' / 'val') in capsys.readouterr().err


# ------------------------------------------------------------------- coco

ANN_ID = 442619  # first annotation of test_coco.json (image 785)


@pytest.fixture
def coco(tmp_path) -> Path:
    root = tmp_path / 'coco'
    shutil.copytree(DATA / 'coco', root)
    return root


def test_clean_coco_and_mpii(capsys):
    for name in ('coco', 'mpii'):
        assert tool.main([str(CONFIGS[name])]) == 0
    assert capsys.readouterr().out.count(' 0 bad') == 2


def test_coco_keypoints_truncated_to_50_values(coco):
    ann_file = coco / 'test_coco.json'

    def truncate(content):
        ann = content['annotations'][0]
        ann['keypoints'] = ann['keypoints'][:50]

    edit_json(ann_file, truncate)
    code, found = check('coco', coco)
    assert code == 1
    issue = only(found, 'bad_keypoints')
    assert issue['path'] == str(ann_file)
    assert issue['field'] == f'annotation {ANN_ID}: keypoints'
    assert issue['message'] == (
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
    issue = only(check('coco', coco)[1], 'bad_value')
    assert issue['message'].startswith(
        f'{ann_file}: annotation id {ANN_ID}: field "keypoints" holds '
        'non-numeric or NaN/inf values at indices [4]'
    )


def test_coco_bbox_of_3_values(coco):
    ann_file = coco / 'test_coco.json'
    edit_json(ann_file, lambda c: c['annotations'][0].update(bbox=[1, 2, 3]))
    issue = only(check('coco', coco)[1], 'bad_bbox')
    assert issue['message'] == (
        f'{ann_file}: annotation id {ANN_ID}: field "bbox" must be '
        '[x, y, w, h] (4 finite numbers), got [1, 2, 3]'
    )


def test_coco_annotation_of_unknown_image(coco):
    ann_file = coco / 'test_coco.json'
    edit_json(ann_file, lambda c: c['annotations'][0].update(image_id=123))
    issue = only(check('coco', coco)[1], 'missing_image')
    assert issue['message'] == (
        f'{ann_file}: annotation id {ANN_ID}: field "image_id" (123) names '
        'no image in "images"'
    )


def test_coco_image_file_deleted(coco):
    image = coco / '000000000785.jpg'
    image.unlink()
    issue = only(check('coco', coco)[1], 'missing_image')
    assert issue['path'] == str(image)
    assert issue['message'] == f'image file {image} does not exist'


def test_coco_image_width_differs_from_json(coco):
    edit_json(
        coco / 'test_coco.json', lambda c: c['images'][0].update(width=600)
    )
    issue = only(check('coco', coco)[1], 'size_mismatch')
    assert issue['message'] == (
        f'image {coco / "000000000785.jpg"} is 640x425 (WxH) but its '
        'annotation records width=600, height=425'
    )


# ------------------------------------------------------------------- mpii


@pytest.fixture
def mpii(tmp_path) -> Path:
    root = tmp_path / 'mpii'
    shutil.copytree(DATA / 'mpii', root)
    return root


@pytest.mark.parametrize(
    'field, value, expected',
    [
        ('joints', [[1.0, 2.0]] * 15, 'shape (15, 2), expected (16, 2)'),
        ('joints_vis', [1] * 15, 'shape (15,), expected (16,)'),
    ],
)
def test_mpii_15_joints(mpii, field, value, expected):
    ann_file = mpii / 'test_mpii.json'
    content = edit_json(ann_file, lambda c: c[2].__setitem__(field, value))
    issue = only(check('mpii', mpii)[1], 'bad_keypoints')
    assert issue['message'] == (
        f'{ann_file}: entry 2 ({content[2]["image"]}): field "{field}" has '
        f'{expected}'
    )


def test_mpii_nan_joint(mpii):
    ann_file = mpii / 'test_mpii.json'
    edit_json(ann_file, lambda c: c[1]['joints'][3].__setitem__(0, 'nan'))
    issue = only(check('mpii', mpii)[1], 'bad_value')
    assert f'{ann_file}: entry 1' in issue['message']
    assert 'field "joints"' in issue['message']
    assert 'at joints [3]' in issue['message']


def test_mpii_image_deleted(mpii):
    image = mpii / '051423444.jpg'
    image.unlink()
    issue = only(check('mpii', mpii)[1], 'missing_image')
    assert issue['message'] == f'image file {image} does not exist'


# -------------------------------------------------------------------- CLI


def test_bad_usage_exits_2(tmp_path, capsys):
    missing = tmp_path / 'no_such_config.py'
    with pytest.raises(SystemExit) as exc:
        tool.main([str(missing)])
    assert exc.value.code == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.slow
def test_cli_two_processes_reports_with_exit_1(mpii):
    bad = mpii / '060754485.jpg'
    bad.write_bytes(b'not a jpeg')
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            str(CONFIGS['mpii']),
            '--nproc',
            '2',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={mpii}/',
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'unreadable_image: 1' in proc.stdout
    assert f'Cannot decode image file {bad}' in proc.stdout
