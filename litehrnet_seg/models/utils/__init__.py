from .checkpoint import load_state_dict_checked, read_state_dict

__all__ = ['load_state_dict_checked', 'read_state_dict']
