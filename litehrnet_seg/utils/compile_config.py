"""Config keys ``compile`` and ``cuda_graphs`` -> mmengine's ``compile``."""

import logging

import torch
from mmengine.config import Config
from mmengine.logging import print_log

#: Logged when a config asks for CUDA graphs where there is no GPU.
NO_CUDA_GRAPHS = (
    'cuda_graphs=True needs a CUDA device, and none is available: '
    'training without CUDA graphs (compile={!r} kept)'
)


def resolve_compile_config(
    cfg: Config, cuda_available: bool | None = None
) -> Config:
    """Fold a config's ``cuda_graphs`` key into mmengine's ``compile``.

    mmengine's Runner compiles the train step with ``torch.compile`` when
    ``cfg.compile`` is True or a dict of ``torch.compile`` options. CUDA
    graphs (https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs)
    are inductor's ``mode='reduce-overhead'``; configs ask for them with
    ``cuda_graphs = True`` next to ``compile = False``, and this function
    turns that into ``compile = dict(mode='reduce-overhead')``, keeping
    any other compile options. Without CUDA it logs that it falls back and
    leaves ``compile`` as it was. The ``cuda_graphs`` key itself is left
    in place (the Runner ignores it).

    Args:
        cfg (Config): The run's config, modified in place.
        cuda_available (bool, optional): Whether a CUDA device will be
            used. None asks ``torch.cuda.is_available()``.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: When ``compile`` already names another mode.
    """
    if not cfg.get('cuda_graphs', False):
        return cfg
    compile_cfg = cfg.get('compile', False)
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if not cuda_available:
        print_log(
            NO_CUDA_GRAPHS.format(compile_cfg),
            logger='current',
            level=logging.WARNING,
        )
        return cfg
    options = dict(compile_cfg) if isinstance(compile_cfg, dict) else {}
    mode = options.get('mode', 'reduce-overhead')
    if mode != 'reduce-overhead':
        raise ValueError(
            f'cuda_graphs=True means compile mode "reduce-overhead", but '
            f'compile.mode is {mode!r}; drop one of the two settings'
        )
    options['mode'] = 'reduce-overhead'
    cfg.compile = options
    print_log(
        f'cuda_graphs=True: compile={options!r} (torch.compile with CUDA '
        'graphs)',
        logger='current',
    )
    return cfg
