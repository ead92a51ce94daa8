from .distributed_cpu import prepare_cpu_distributed

__all__ = ['prepare_cpu_distributed']
