"""A Runner that loads ``load_from`` and ``--resume`` checkpoints strictly.

``Runner.load_checkpoint`` (used by ``load_from`` and ``Runner.resume``)
loads with ``strict=False``: a checkpoint of another architecture or task
half loads and training goes on. This override uses the project's loader:
every tensor must fit (known layouts are renamed), else
``CheckpointMismatchError`` names the file, the config and the keys before
training starts. The one opt-in partial load is the config key
``allow_new_head=True`` (``tools/train.py --allow-new-head``).
"""

from collections.abc import Callable

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..checkpoint import load_checkpoint

__all__ = ['StrictLoadRunner']


@RUNNERS.register_module()
class StrictLoadRunner(Runner):
    """``Runner`` whose checkpoint loading is strict; see the module doc."""

    def load_checkpoint(
        self,
        filename: str,
        map_location: str | Callable = 'cpu',
        strict: bool = True,
        revise_keys: list | None = None,
    ) -> dict:
        """Load ``filename`` into the model strictly.

        Args:
            filename (str): The checkpoint.
            map_location (str | Callable): Where to map tensors. Defaults
                to 'cpu'.
            strict (bool): Ignored: loading is always strict (partial loads
                only with the config's ``allow_new_head``).
            revise_keys (list, optional): Ignored: DDP ``module.`` prefixes
                and the known layouts are renamed by the loader.

        Returns:
            dict: The checkpoint.

        Raises:
            CheckpointError: The file cannot be read.
            CheckpointMismatchError: It does not fit the model; nothing is
                loaded.
        """
        model = (
            self.model.module if is_model_wrapper(self.model) else self.model
        )
        location = map_location if isinstance(map_location, str) else 'cpu'
        checkpoint = load_checkpoint(
            model,
            filename,
            config=self.cfg.filename or None,
            allow_new_head=bool(self.cfg.get('allow_new_head', False)),
            map_location=location,
        )
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
