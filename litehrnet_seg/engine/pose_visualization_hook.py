"""Hook that saves skeleton overlays of pose predictions."""

import mmcv
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..visualization import draw_skeleton


@HOOKS.register_module()
class PoseVisualizationHook(Hook):
    """Draw predicted skeletons on the original images during val/test.

    The pose counterpart of mmseg's ``SegVisualizationHook``: same
    arguments, so ``tools/test.py --show-dir DIR`` enables it the same way.
    Images go through the runner's visualizer backends (``LocalVisBackend``
    writes ``DIR/vis_data/vis_image/<image>_<step>.png``).

    Args:
        draw (bool): Draw at all. Defaults to False.
        interval (int): Draw every ``interval``-th sample. Defaults to 50.
        score_thr (float): Keypoint score threshold. Defaults to 0.3.
        show (bool): Also show in a window. Defaults to False.
        wait_time (float): Seconds a shown window waits. Defaults to 0.
    """

    def __init__(
        self,
        draw: bool = False,
        interval: int = 50,
        score_thr: float = 0.3,
        show: bool = False,
        wait_time: float = 0.0,
    ) -> None:
        self.draw = draw
        self.interval = interval
        self.score_thr = score_thr
        self.show = show
        self.wait_time = wait_time
        self._count = 0

    def _draw(self, runner, dataloader, outputs) -> None:
        if not self.draw:
            return
        links = dataloader.dataset.metainfo.get('skeleton_links', [])
        for sample in outputs:
            self._count += 1
            if self._count % self.interval:
                continue
            image = mmcv.imfrombytes(get(sample.img_path))
            pred = sample.pred_instances
            canvas = draw_skeleton(
                image,
                pred.keypoints,
                pred.keypoint_scores,
                links,
                self.score_thr,
            )
            name = f'{sample.img_path.rsplit("/", 1)[-1]}_{sample.get("id")}'
            rgb = mmcv.bgr2rgb(canvas)
            runner.visualizer.add_image(name, rgb, step=self._count)
            if self.show:
                runner.visualizer.show(
                    rgb, win_name=name, wait_time=self.wait_time
                )

    def after_val_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        self._draw(runner, runner.val_dataloader, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        self._draw(runner, runner.test_dataloader, outputs)
