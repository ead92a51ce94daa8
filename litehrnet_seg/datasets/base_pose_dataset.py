"""Shared parts of the top-down pose datasets (COCO, MPII).

Pose metainfo is kept flat and in plain Python types (lists, floats), so
that it can be logged, stored in checkpoints and compared in tests:

- ``dataset_name`` (str), ``num_keypoints`` (int)
- ``keypoint_names`` (list of str), ``keypoint_id2name``,
  ``keypoint_name2id`` (dicts)
- ``flip_indices`` (list of int): the index each keypoint takes after a
  horizontal flip; ``flip_pairs`` (list of [i, j], i < j)
- ``upper_body_ids``, ``lower_body_ids`` (lists of int)
- ``joint_weights`` (list of float) and its mmpose alias
  ``dataset_keypoint_weights``
- ``sigmas`` (list of float): OKS sigmas
- ``skeleton_links`` (list of [i, j])

mmpose 1.x ``dataset_info`` dicts (``keypoint_info`` / ``skeleton_info``)
and ``dict(from_file='configs/_base_/datasets/coco.py')`` are accepted as
``metainfo`` too and converted to this form.
"""

import copy
import json
import os.path as osp
from collections.abc import Mapping
from typing import Any

import numpy as np
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from .integrity import BadSamplePolicyMixin, DataError

# Copied into every data item (as mmpose does) so that the pipeline (flip,
# half-body augmentation, target weights) needs no handle on the dataset.
ITEM_METAINFO_KEYS = (
    'flip_indices',
    'flip_pairs',
    'upper_body_ids',
    'lower_body_ids',
    'dataset_keypoint_weights',
    'dataset_name',
)

_PER_KEYPOINT_KEYS = ('flip_indices', 'joint_weights', 'sigmas')


def _from_mmpose_dataset_info(info: dict) -> dict:
    """Convert mmpose ``keypoint_info``/``skeleton_info`` to flat keys."""
    kinfo = info.pop('keypoint_info', None)
    if kinfo is not None:
        ids = sorted(int(i) for i in kinfo)
        if ids != list(range(len(ids))):
            raise ValueError(
                f'keypoint_info ids must be 0..K-1 without gaps, got {ids}'
            )
        items = [kinfo[i] if i in kinfo else kinfo[str(i)] for i in ids]
        names = [item['name'] for item in items]
        name2id = {name: i for i, name in enumerate(names)}
        flip_indices = []
        for i, item in enumerate(items):
            swap = item.get('swap', '')
            if swap and swap not in name2id:
                raise ValueError(
                    f'keypoint_info[{i}] ({item["name"]}) swaps with '
                    f'unknown keypoint {swap!r}'
                )
            flip_indices.append(name2id[swap] if swap else i)
        info.setdefault('keypoint_names', names)
        info.setdefault('flip_indices', flip_indices)
        info.setdefault(
            'upper_body_ids',
            [i for i, it in enumerate(items) if it.get('type') == 'upper'],
        )
        info.setdefault(
            'lower_body_ids',
            [i for i, it in enumerate(items) if it.get('type') == 'lower'],
        )
    sinfo = info.pop('skeleton_info', None)
    if sinfo is not None:
        name2id = {n: i for i, n in enumerate(info['keypoint_names'])}
        links = []
        for key in sorted(sinfo, key=int):
            a, b = sinfo[key]['link']
            links.append([name2id[a], name2id[b]])
        info.setdefault('skeleton_links', links)
    return info


def parse_pose_metainfo(metainfo: Mapping, owner: str = 'dataset') -> dict:
    """Normalise pose metainfo to the flat form described in this module.

    Args:
        metainfo (Mapping): Flat metainfo, an mmpose ``dataset_info`` dict
            (``keypoint_info``, ``skeleton_info``, ``joint_weights``,
            ``sigmas``) or ``dict(from_file=path)`` naming a Python file
            that defines ``dataset_info``. Other keys override the file's.
        owner (str): Name used in error messages.

    Returns:
        dict: Flat metainfo with the derived keys filled in.
    """
    info = dict(copy.deepcopy(dict(metainfo)))
    if 'from_file' in info:
        path = info.pop('from_file')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{owner}: metainfo file (from_file) not found: {path}'
            )
        cfg = Config.fromfile(path)
        if 'dataset_info' not in cfg:
            raise ValueError(
                f'{owner}: metainfo file {path} defines no `dataset_info`'
            )
        file_info = cfg['dataset_info'].to_dict()
        file_info.update(info)
        info = file_info
    info = _from_mmpose_dataset_info(info)

    missing = [
        k
        for k in ('keypoint_names', 'flip_indices', 'sigmas', 'joint_weights')
        if k not in info
    ]
    if missing:
        raise ValueError(f'{owner}: pose metainfo lacks {missing}')
    names = list(info['keypoint_names'])
    num = len(names)
    info['keypoint_names'] = names
    info['num_keypoints'] = num
    info['keypoint_id2name'] = dict(enumerate(names))
    info['keypoint_name2id'] = {n: i for i, n in enumerate(names)}
    info['flip_indices'] = [int(i) for i in info['flip_indices']]
    info['joint_weights'] = [float(w) for w in info['joint_weights']]
    info['sigmas'] = [float(s) for s in info['sigmas']]
    for key in _PER_KEYPOINT_KEYS:
        if len(info[key]) != num:
            raise ValueError(
                f'{owner}: metainfo {key!r} has {len(info[key])} entries '
                f'but there are {num} keypoints'
            )
    flip = info['flip_indices']
    if sorted(flip) != list(range(num)) or any(
        flip[flip[i]] != i for i in range(num)
    ):
        raise ValueError(
            f'{owner}: metainfo flip_indices {flip} is not a symmetric '
            'permutation of 0..K-1'
        )
    info['flip_pairs'] = [[i, j] for i, j in enumerate(flip) if i < j]
    info['dataset_keypoint_weights'] = list(info['joint_weights'])
    for key in ('upper_body_ids', 'lower_body_ids'):
        ids = [int(i) for i in info.get(key, [])]
        if any(not 0 <= i < num for i in ids):
            raise ValueError(f'{owner}: metainfo {key} out of range: {ids}')
        info[key] = ids
    links = [[int(a), int(b)] for a, b in info.get('skeleton_links', [])]
    info['skeleton_links'] = links
    info.setdefault('dataset_name', owner)
    return info


class BaseTopdownPoseDataset(BadSamplePolicyMixin, BaseDataset):
    """Base of the top-down pose datasets: one data item per person.

    Handles the pose metainfo (parsed with :func:`parse_pose_metainfo`,
    user keys overriding the class's ``METAINFO``) and copies the fields in
    ``ITEM_METAINFO_KEYS`` into every data item returned by
    :meth:`get_data_info`, so the pipeline sees them.

    Takes ``bad_sample_policy`` (``'raise'`` or ``'skip'``, see
    :mod:`litehrnet_seg.datasets.integrity.bad_sample_policy`): subclasses
    hand the errors of annotations that fail their checks to
    :meth:`reject_samples` and drop those annotations when it returns;
    pipeline errors are handled by ``prepare_data``.

    Subclasses set ``METAINFO`` and implement ``load_data_list``.

    Args:
        data_mode (str): Only ``'topdown'`` is supported. Default:
            ``'topdown'``.
        metainfo (dict, optional): Overrides the class's ``METAINFO``;
            mmpose ``dict(from_file=...)`` / ``dataset_info`` dicts are
            accepted.
        bad_sample_policy (str): ``'raise'`` (default: a bad annotation or
            an image that fails to load raises an error naming it) or
            ``'skip'`` (log, count and skip it; not in test mode). See
            :mod:`litehrnet_seg.datasets.integrity.bad_sample_policy`.
        **kwargs: mmengine ``BaseDataset`` arguments (``ann_file``,
            ``data_root``, ``data_prefix`` (``img``: image folder),
            ``filter_cfg`` (``dict(bbox_score_thr=t)``), ``indices``,
            ``serialize_data``, ``pipeline``, ``test_mode``,
            ``lazy_init``, ``max_refetch``).
    """

    METAINFO: dict = dict()

    def __init__(self, *args, data_mode: str = 'topdown', **kwargs) -> None:
        if data_mode != 'topdown':
            raise ValueError(
                f'{type(self).__name__} supports '
                f"data_mode='topdown' only, got {data_mode!r}"
            )
        self.data_mode = data_mode
        kwargs.setdefault('data_prefix', dict(img=''))
        super().__init__(*args, **kwargs)

    @classmethod
    def _load_metainfo(cls, metainfo: Mapping | None = None) -> dict:
        """Merge ``metainfo`` over the class's and parse the result.

        Unlike :class:`mmengine.dataset.BaseDataset`, strings are never
        read as file names (``dataset_name='coco'`` stays a string).

        Args:
            metainfo (Mapping, optional): User metainfo (flat, mmpose
                ``dataset_info`` style or ``dict(from_file=...)``).

        Returns:
            dict: Parsed flat metainfo.
        """
        info = copy.deepcopy(cls.METAINFO)
        if metainfo is not None:
            if not isinstance(metainfo, Mapping):
                raise TypeError(
                    f'{cls.__name__}: metainfo should be a dict, got '
                    f'{type(metainfo)}'
                )
            user = dict(metainfo)
            if 'from_file' in user or 'keypoint_info' in user:
                # A full mmpose dataset_info replaces the class default.
                info = parse_pose_metainfo(user, cls.__name__)
            else:
                info.update(copy.deepcopy(user))
        return parse_pose_metainfo(info, cls.__name__)

    def get_data_info(self, idx: int) -> dict:
        """Return the idx-th item with the pose metainfo fields added.

        Args:
            idx (int): Index of the item.

        Returns:
            dict: The data item.
        """
        data_info = super().get_data_info(idx)
        for key in ITEM_METAINFO_KEYS:
            value: Any = copy.deepcopy(self._metainfo[key])
            if key == 'dataset_keypoint_weights':
                value = np.asarray(value, dtype=np.float32)
            data_info[key] = value
        return data_info

    def filter_data(self) -> list[dict]:
        """Apply ``filter_cfg=dict(bbox_score_thr=...)`` (mmpose name).

        Returns:
            list[dict]: The items whose ``bbox_score`` is at least the
            threshold (all of them without ``filter_cfg``).
        """
        if not self.filter_cfg or 'bbox_score_thr' not in self.filter_cfg:
            return self.data_list
        thr = float(self.filter_cfg['bbox_score_thr'])
        return [
            item
            for item in self.data_list
            if float(item['bbox_score'][0]) >= thr
        ]


def check_ann_file(path: str, what: str, owner: str) -> None:
    """Raise ``FileNotFoundError`` naming ``path`` when it is not a file.

    Args:
        path (str): The file to check.
        what (str): What it is, for the message (e.g. 'annotation file').
        owner (str): The dataset class name, for the message.
    """
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{owner}: {what} not found: {path!r}')


def load_json(path: str, what: str, owner: str) -> Any:
    """Load a json file, naming it in any error.

    Args:
        path (str): The json file.
        what (str): What it is, for the message.
        owner (str): The dataset class name, for the message.

    Returns:
        Any: The parsed content.
    """
    check_ann_file(path, what, owner)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f'{owner}: {what} {path} is not valid json: {e}',
            path,
            'unreadable_annotation',
        ) from e
