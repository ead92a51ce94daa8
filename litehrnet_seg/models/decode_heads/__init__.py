from .project_first_concat_head import ProjectFirstConcatHead

__all__ = ['ProjectFirstConcatHead']
