"""Cityscapes dataset that fails early, and clearly, on incomplete data."""

import os.path as osp
from collections.abc import Sequence

import mmengine.fileio as fileio
from mmengine.fileio.backends import LocalBackend
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .integrity import BadSamplePolicyMixin, DataError

__all__ = ['CheckedCityscapesDataset', 'find_frames']

CONVERTER_HINT = (
    'The *_gtFine_labelTrainIds.png label maps are not part of the '
    'Cityscapes download; generate them from the *_gtFine_polygons.json '
    '(or *_gtFine_labelIds.png) files with `python '
    'tools/dataset_converters/cityscapes.py data/cityscapes` (needs '
    '`pip install cityscapesscripts`).'
)
DOWNLOAD_HINT = (
    'Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from '
    'https://www.cityscapes-dataset.com/downloads/ and unzip both into '
    'data_root, giving data_root/leftImg8bit/{train,val,test}/<city>/ and '
    'data_root/gtFine/{train,val,test}/<city>/.'
)


def find_frames(
    folder: str, suffixes: Sequence[str], backend_args: dict | None = None
) -> dict[str, dict[str, str]]:
    """Find the Cityscapes frames under ``folder`` by file suffix.

    The one place that knows how frames are found: the dataset lists its
    images with it, the converter its annotation files.

    Args:
        folder (str): Searched recursively (e.g. ``leftImg8bit/train``).
        suffixes (Sequence[str]): File suffixes, e.g.
            ``['_gtFine_polygons.json', '_gtFine_labelIds.png']``.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        dict: Frame name (path relative to ``folder`` without suffix, e.g.
        ``frankfurt/frankfurt_000000_000294``) -> {suffix: file path}, in
        name order.
    """
    frames: dict[str, dict[str, str]] = {}
    for rel in fileio.list_dir_or_file(
        folder,
        list_dir=False,
        suffix=tuple(suffixes),
        recursive=True,
        backend_args=backend_args,
    ):
        suffix = next(s for s in suffixes if rel.endswith(s))
        name = rel[: -len(suffix)]
        frames.setdefault(name, {})[suffix] = osp.join(folder, rel)
    return dict(sorted(frames.items()))


@DATASETS.register_module()
class CheckedCityscapesDataset(BadSamplePolicyMixin, CityscapesDataset):
    """Cityscapes dataset that checks its files when it is built.

    `Cityscapes <https://arxiv.org/abs/1604.01685>`_ is a semantic
    segmentation benchmark of urban street scenes (19 evaluated classes).
    This class behaves like mmseg's ``CityscapesDataset`` (image suffix
    ``_leftImg8bit.png``, label suffix ``_gtFine_labelTrainIds.png``,
    ``reduce_zero_label=False``; frames found with :func:`find_frames` or
    listed in ``ann_file``), and additionally:

    * raises ``FileNotFoundError`` naming ``data_root`` and the image folder
      when that folder does not exist or holds no images (mmseg would build
      an empty dataset, or fail later with an unrelated error);
    * rejects each image without its label map (and, with an
      ``ann_file``, each listed image that does not exist) with a
      ``DataError`` naming it and the label path it expected, with the
      command that generates the label maps. Samples without a
      ``seg_map_path`` (no ``data_prefix['seg_map_path']``, e.g. the
      unlabelled test split) are not checked for labels.

    With ``bad_sample_policy='skip'`` the rejected samples are logged,
    counted and dropped instead (an error is still raised when all of them
    are bad), and samples whose pipeline raises a ``DataError``
    (unreadable file, label ids outside the valid set, size mismatch) are
    skipped at run time; see
    :mod:`litehrnet_seg.datasets.integrity.bad_sample_policy`.

    Args:
        img_suffix (str): Suffix of image files.
            Defaults to ``'_leftImg8bit.png'``.
        seg_map_suffix (str): Suffix of label files.
            Defaults to ``'_gtFine_labelTrainIds.png'``.
        check_files (bool): Whether to check that every listed image and
            label file exists (one ``exists`` call per file; turn it off for
            slow remote storage). The check that the image folder exists and
            is not empty always runs. Defaults to True.
        bad_sample_policy (str): ``'raise'`` (fail on the first bad sample,
            naming its file) or ``'skip'`` (log, count and skip it; not in
            test mode). Defaults to ``'raise'``.
        **kwargs: Other arguments of
            :class:`mmseg.datasets.BaseSegDataset`, e.g. ``data_root``,
            ``data_prefix``, ``ann_file``, ``pipeline``, ``test_mode``,
            ``backend_args``.
    """

    def __init__(
        self,
        img_suffix: str = '_leftImg8bit.png',
        seg_map_suffix: str = '_gtFine_labelTrainIds.png',
        check_files: bool = True,
        bad_sample_policy: str = 'raise',
        **kwargs,
    ) -> None:
        # Set before super().__init__(), which calls load_data_list().
        self.check_files = check_files
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            bad_sample_policy=bad_sample_policy,
            **kwargs,
        )

    def load_data_list(self) -> list[dict]:
        """List the frames, then check that their files exist.

        Returns:
            list[dict]: All data infos of the dataset.

        Raises:
            FileNotFoundError: If the image folder is missing or holds no
                images.
            DataError: If an image or its label map is missing (unless
                skipped, see ``bad_sample_policy``).
        """
        img_dir = self.data_prefix.get('img_path', '') or ''
        seg_dir = self.data_prefix.get('seg_map_path')
        uses_ann_file = bool(self.ann_file) and not osp.isdir(self.ann_file)
        where = (
            f'(data_root={self.data_root!r}, data_prefix={self.data_prefix!r})'
        )
        if uses_ann_file:
            lines = fileio.list_from_file(
                self.ann_file, backend_args=self.backend_args
            )
            names = [line.strip() for line in lines if line.strip()]
            source = f'listed in ann_file {self.ann_file!r}'
        else:
            # Without this, mmengine raises a bare "No such file or
            # directory" from inside a generator, with no hint.
            if self._is_local(img_dir) and not osp.isdir(img_dir):
                raise FileNotFoundError(
                    f'Cityscapes image folder {img_dir!r} does not exist '
                    f'{where}. Expected images named '
                    f'<city>_<seq>_<frame>{self.img_suffix} under it. '
                    + DOWNLOAD_HINT
                )
            names = list(
                find_frames(img_dir, [self.img_suffix], self.backend_args)
            )
            source = f'found under {img_dir!r}'
        # mmseg builds an empty dataset here, which later fails with
        # "need at least one array to concatenate" or an empty dataloader.
        if not names:
            raise FileNotFoundError(
                f'No Cityscapes images (*{self.img_suffix}) {source} '
                f'{where}. ' + DOWNLOAD_HINT
            )
        data_list = [
            dict(
                img_path=osp.join(img_dir, name + self.img_suffix),
                seg_map_path=osp.join(seg_dir, name + self.seg_map_suffix)
                if seg_dir is not None
                else None,
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[],
            )
            for name in names
        ]
        if self.check_files:
            data_list = self._drop_missing_files(data_list, uses_ann_file)
        return data_list

    def _is_local(self, path: str) -> bool:
        """Whether ``path`` is read from the local file system."""
        backend = fileio.get_file_backend(path, backend_args=self.backend_args)
        return isinstance(backend, LocalBackend)

    def _drop_missing_files(
        self, data_list: list[dict], uses_ann_file: bool
    ) -> list[dict]:
        """Reject the items whose image or label does not exist."""
        errors, kept = [], []
        for info in data_list:
            img, seg = info['img_path'], info['seg_map_path']
            # Only an ann_file can name images that do not exist.
            if uses_ann_file and not self._exists(img):
                message = (
                    f'image {img} listed in ann_file {self.ann_file!r} '
                    'does not exist'
                )
                errors.append(DataError(message, img, 'missing_image'))
            elif seg is not None and not self._exists(seg):
                message = f'image {img} has no label map; expected {seg}'
                errors.append(DataError(message, img, 'missing_label'))
            else:
                kept.append(info)
        seg_dir = self.data_prefix.get('seg_map_path')
        hint = DOWNLOAD_HINT if uses_ann_file else CONVERTER_HINT
        if seg_dir and self._is_local(seg_dir) and not osp.isdir(seg_dir):
            hint = f'The label folder {seg_dir!r} does not exist. {hint}'
        self.reject_samples(errors, len(data_list), hint)
        return kept

    def _exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)
