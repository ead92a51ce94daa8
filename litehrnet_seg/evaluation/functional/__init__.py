from .oks_nms import oks_iou, oks_nms

__all__ = ['oks_iou', 'oks_nms']
