from .skeleton import draw_skeleton

__all__ = ['draw_skeleton']
