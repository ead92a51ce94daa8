from .backbones import LiteHRNet

__all__ = ['LiteHRNet']
