from .cli_config import WorkDirError, load_cli_config
from .compile_config import resolve_compile_config
from .distributed_cpu import prepare_cpu_distributed

__all__ = [
    'WorkDirError',
    'load_cli_config',
    'prepare_cpu_distributed',
    'resolve_compile_config',
]
