"""Stop (or skip the step) when the loss goes NaN/Inf."""

import math

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .nonfinite_guard_optim_wrapper import NonFiniteGuardOptimWrapper

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook']


class NonFiniteLossError(FloatingPointError):
    """Training diverged: a loss, gradient or weight is NaN/Inf."""


def _non_finite(outputs) -> dict[str, float]:
    """Loss entries of a ``train_step`` output dict that are NaN/Inf.

    Only keys containing 'loss' (what ``BaseModel.parse_losses`` sums);
    metrics such as ``decode.acc_seg`` can be NaN harmlessly (a crop with
    only ignored pixels).
    """
    bad = {}
    for name, value in (outputs or {}).items():
        if 'loss' not in name:
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() == 0 or value.isfinite().all():
                continue
            bad[name] = float(value.detach().float().flatten()[0])
        elif isinstance(value, int | float) and not math.isfinite(value):
            bad[name] = float(value)
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """React to NaN/Inf losses: stop training or skip the update.

    Checks the loss terms of every training iteration (the entries of the
    ``train_step`` output whose name contains 'loss').

    * ``policy='raise'``: raise :class:`NonFiniteLossError` naming the
      iteration and the terms. It runs before the checkpoint hook, so the
      diverged state is never saved and ``last_checkpoint`` keeps naming
      the last good checkpoint.
    * ``policy='skip'``: with ``NonFiniteGuardOptimWrapper`` (which skips
      the step of a non-finite loss or gradient) log a warning with a
      running count (scalar ``skipped_steps``) and go on; raise after
      ``max_consecutive_skips`` skips in a row.

    Either way, a checkpoint with NaN/Inf weights or buffers is refused
    before it is written.

    Args:
        policy (str): 'raise' or 'skip'. Defaults to 'raise'.
        max_consecutive_skips (int | None): With 'skip', give up after
            this many skipped iterations in a row; None never gives up.
            Defaults to 100.
        check_checkpoints (bool): Refuse to save non-finite weights.
            Defaults to True.
    """

    priority = 'VERY_HIGH'  # before LoggerHook and CheckpointHook

    def __init__(
        self,
        policy: str = 'raise',
        max_consecutive_skips: int | None = 100,
        check_checkpoints: bool = True,
    ) -> None:
        if policy not in ('raise', 'skip'):
            raise ValueError(
                f"NonFiniteLossHook policy must be 'raise' or 'skip', got "
                f'{policy!r}'
            )
        if max_consecutive_skips is not None and max_consecutive_skips < 1:
            raise ValueError(
                'max_consecutive_skips must be None or >= 1, got '
                f'{max_consecutive_skips}'
            )
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.check_checkpoints = check_checkpoints
        self.skipped = 0
        self._consecutive = 0

    @staticmethod
    def _guard(runner) -> NonFiniteGuardOptimWrapper | None:
        wrapper = runner.optim_wrapper
        return (
            wrapper
            if isinstance(wrapper, NonFiniteGuardOptimWrapper)
            else None
        )

    def before_train(self, runner) -> None:
        """Check that 'skip' has an optimizer wrapper that can skip.

        Args:
            runner (Runner): The runner.

        Raises:
            TypeError: ``policy='skip'`` without NonFiniteGuardOptimWrapper.
        """
        if self.policy == 'skip' and self._guard(runner) is None:
            raise TypeError(
                "NonFiniteLossHook(policy='skip') needs "
                "optim_wrapper.type='NonFiniteGuardOptimWrapper' (it skips "
                'the optimizer step before it is applied), got '
                f'{type(runner.optim_wrapper).__name__}. Set it in the '
                "config or use policy='raise'."
            )

    def _diverged(self, runner, what: str) -> NonFiniteLossError:
        last = runner.message_hub.get_info('last_ckpt')
        message = (
            f'Training diverged at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): {what}. Stopped before writing a '
            'checkpoint of this state; the last good checkpoint is '
            f'{last or "none (no checkpoint saved yet)"} (tools/train.py '
            'CONFIG --resume continues from it). Lower the learning rate, '
            'set optim_wrapper.clip_grad=dict(max_norm=..., norm_type=2), '
            "or use NonFiniteLossHook(policy='skip') with "
            'NonFiniteGuardOptimWrapper.'
        )
        runner.logger.error(message)
        return NonFiniteLossError(message)

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        """Raise or count when this iteration's loss was non-finite.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch: Unused.
            outputs (dict): Loss terms returned by ``train_step``.

        Raises:
            NonFiniteLossError: policy 'raise' and a non-finite loss, or
                too many consecutive skips.
        """
        bad = _non_finite(outputs)
        guard = self._guard(runner)
        reason = guard.last_skip_reason if guard is not None else None
        if not bad and reason is None:
            self._consecutive = 0
            return
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        what = f'non-finite loss terms {terms}' if bad else ''
        if reason is not None and reason != 'loss':
            what += ('; ' if what else '') + f'non-finite {reason}'
            if reason == 'gradient':
                what += 's'
        if self.policy == 'raise':
            raise self._diverged(runner, what)
        self.skipped += 1
        self._consecutive += 1
        runner.message_hub.update_scalar('train/skipped_steps', self.skipped)
        if reason is not None:
            done = 'optimizer step skipped and gradients zeroed'
        else:  # gradient accumulation: the step comes later
            done = 'the optimizer step of this accumulation window is skipped'
        runner.logger.warning(
            f'Iteration {runner.iter + 1}: {what}; {done} ({self.skipped} '
            f'skipped so far, {self._consecutive} in a row).'
        )
        if (
            self.max_consecutive_skips is not None
            and self._consecutive >= self.max_consecutive_skips
        ):
            raise self._diverged(
                runner,
                f'{self._consecutive} consecutive iterations skipped '
                f'(max_consecutive_skips={self.max_consecutive_skips}); '
                f'latest: {what}',
            )

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write weights or buffers that are NaN/Inf.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be written.

        Raises:
            NonFiniteLossError: if a floating-point tensor of the state
                dict is not finite.
        """
        if not self.check_checkpoints:
            return
        bad = [
            name
            for name, tensor in checkpoint.get('state_dict', {}).items()
            if isinstance(tensor, torch.Tensor)
            and tensor.is_floating_point()
            and not bool(tensor.isfinite().all())
        ]
        if bad:
            shown = ', '.join(bad[:5]) + (' ...' if len(bad) > 5 else '')
            raise self._diverged(
                runner,
                f'{len(bad)} non-finite weight/buffer tensor(s) ({shown}) '
                'in the checkpoint about to be saved',
            )
