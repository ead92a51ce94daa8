"""Cityscapes dataset that fails early, and clearly, on incomplete data."""

import os.path as osp

import mmengine.fileio as fileio
from mmengine.fileio.backends import LocalBackend
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .bad_sample_policy import BadSamplePolicyMixin

__all__ = ['CheckedCityscapesDataset']

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
# How many offending files an error message lists before summarising.
MAX_LISTED = 5


@DATASETS.register_module()
class CheckedCityscapesDataset(BadSamplePolicyMixin, CityscapesDataset):
    """Cityscapes dataset that checks its files when it is built.

    `Cityscapes <https://arxiv.org/abs/1604.01685>`_ is a semantic
    segmentation benchmark of urban street scenes (19 evaluated classes).
    This class behaves like mmseg's ``CityscapesDataset`` (image suffix
    ``_leftImg8bit.png``, label suffix ``_gtFine_labelTrainIds.png``,
    ``reduce_zero_label=False``), and additionally, right after the file
    list is loaded:

    * raises ``FileNotFoundError`` naming ``data_root`` and the image folder
      when that folder does not exist or holds no images (mmseg would build
      an empty dataset, or fail later with an unrelated error);
    * raises ``FileNotFoundError`` naming each image without its label map
      (and the label path it expected), with the command that generates the
      label maps. Samples without a ``seg_map_path`` (no
      ``data_prefix['seg_map_path']``, e.g. the unlabelled test split) are
      not checked for labels.

    With ``bad_sample_policy='skip'`` the images without label (or, with
    an ``ann_file``, the listed images that do not exist) are logged,
    counted and dropped instead (an error is still raised when all of them
    are missing), and samples whose pipeline fails (unreadable file, label
    ids outside the valid set, size mismatch) are skipped at run time; see
    :mod:`litehrnet_seg.datasets.bad_sample_policy`.

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
        """Load the file list, then check that it is complete.

        Returns:
            list[dict]: All data infos of the dataset.

        Raises:
            FileNotFoundError: If the image folder is missing or holds no
                images, or if an image or its label map is missing.
        """
        img_dir = self.data_prefix.get('img_path', '') or ''
        uses_ann_file = bool(self.ann_file) and not osp.isdir(self.ann_file)
        # Without this, mmengine raises a bare "No such file or directory"
        # from deep inside a generator, with no hint what was expected.
        if (
            not uses_ann_file
            and self._is_local(img_dir)
            and not osp.isdir(img_dir)
        ):
            raise FileNotFoundError(
                f'Cityscapes image folder {img_dir!r} does not exist '
                f'(data_root={self.data_root!r}, data_prefix='
                f'{self.data_prefix!r}). Expected images named '
                f'<city>_<seq>_<frame>{self.img_suffix} under it. '
                + DOWNLOAD_HINT
            )

        data_list = super().load_data_list()

        # mmseg builds an empty dataset here, which later fails with
        # "need at least one array to concatenate" or an empty dataloader.
        if not data_list:
            source = (
                f'listed in ann_file {self.ann_file!r}'
                if uses_ann_file
                else f'found under {img_dir!r}'
            )
            raise FileNotFoundError(
                f'No Cityscapes images (*{self.img_suffix}) {source} '
                f'(data_root={self.data_root!r}, data_prefix='
                f'{self.data_prefix!r}). ' + DOWNLOAD_HINT
            )

        if self.check_files:
            if uses_ann_file:
                # Only an ann_file can name images that do not exist.
                data_list = self._check_images_exist(data_list)
            data_list = self._check_labels_exist(data_list)
        return data_list

    def _is_local(self, path: str) -> bool:
        """Whether ``path`` is read from the local file system."""
        backend = fileio.get_file_backend(path, backend_args=self.backend_args)
        return isinstance(backend, LocalBackend)

    def _exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)

    def _check_images_exist(self, data_list: list[dict]) -> list[dict]:
        """Return the items whose image exists (all, or raise)."""
        missing = [
            info['img_path']
            for info in data_list
            if not self._exists(info['img_path'])
        ]
        if (
            missing
            and self.skips_bad_samples
            and len(missing) < len(data_list)
        ):
            for path in missing:
                self.bad_sample(
                    f'image {path} listed in ann_file {self.ann_file!r} '
                    'does not exist',
                    FileNotFoundError,
                )
            gone = set(missing)
            return [i for i in data_list if i['img_path'] not in gone]
        if missing:
            listed = '\n'.join(f'  {p}' for p in missing[:MAX_LISTED])
            raise FileNotFoundError(
                f'{len(missing)} of {len(data_list)} images listed in '
                f'ann_file {self.ann_file!r} do not exist'
                f'{_more(missing)}:\n{listed}\n' + DOWNLOAD_HINT
            )
        return data_list

    def _check_labels_exist(self, data_list: list[dict]) -> list[dict]:
        """Return the items whose label exists (all, or raise)."""
        missing = [
            info
            for info in data_list
            if info.get('seg_map_path') is not None
            and not self._exists(info['seg_map_path'])
        ]
        if not missing:
            return data_list
        if self.skips_bad_samples and len(missing) < len(data_list):
            for info in missing:
                self.bad_sample(
                    f'image {info["img_path"]} has no label map; expected '
                    f'{info["seg_map_path"]}',
                    FileNotFoundError,
                )
            gone = {id(info) for info in missing}
            return [info for info in data_list if id(info) not in gone]
        listed = '\n'.join(
            f'  image {info["img_path"]} has no label map; expected '
            f'{info["seg_map_path"]}'
            for info in missing[:MAX_LISTED]
        )
        ann_dir: str | None = self.data_prefix.get('seg_map_path')
        no_dir = ''
        if ann_dir and self._is_local(ann_dir) and not osp.isdir(ann_dir):
            no_dir = f'The label folder {ann_dir!r} does not exist. '
        raise FileNotFoundError(
            f'{len(missing)} of {len(data_list)} Cityscapes images have no '
            f'label map (*{self.seg_map_suffix}){_more(missing)}:\n'
            f'{listed}\n{no_dir}{CONVERTER_HINT}'
        )


def _more(items: list) -> str:
    """Note that an error message lists only the first few items."""
    if len(items) > MAX_LISTED:
        return f' (first {MAX_LISTED} shown)'
    return ''
