"""Optimizer wrapper that never applies a non-finite update."""

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

__all__ = ['NonFiniteGuardOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that skips the step when loss or gradients are
    NaN/Inf.

    ``update_params`` (backward, step, zero_grad) is the only place between
    the backward pass and the update, so the check lives here. A skipped
    step leaves weights and optimizer state (momentum, Adam moments) as
    they were and zeroes the gradients; :class:`NonFiniteLossHook` logs it
    or stops. The backward pass still runs so that DDP ranks stay in step,
    and the decision is all-reduced so all ranks skip together. With
    gradient accumulation the whole window is skipped. Not for AMP
    (``AmpOptimWrapper``'s GradScaler already skips such steps).

    Args:
        *args: Arguments of ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
        check_grads (bool): Also check the gradients (not only the loss)
            before each step; costs one ``isfinite`` per parameter tensor
            and one host sync. Defaults to True.
        **kwargs: Keyword arguments of ``OptimWrapper``.

    Attributes:
        skipped_steps (int): Steps skipped so far.
        last_skip_reason (str | None): Why the latest ``update_params``
            call skipped its step ('loss', 'gradient' or, in distributed
            runs, 'another rank'), None if it did not skip.
    """

    def __init__(self, *args, check_grads: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_grads = check_grads
        self.skipped_steps = 0
        self.last_skip_reason: str | None = None
        self._window_loss_bad = False

    def _grads_finite(self) -> bool:
        grads = [
            p.grad
            for group in self.optimizer.param_groups
            for p in group['params']
            if p.grad is not None
        ]
        if not grads:
            return True
        return bool(torch.stack([g.isfinite().all() for g in grads]).all())

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict | None = None,
        zero_kwargs: dict | None = None,
    ) -> None:
        """Backward, then step unless the loss or a gradient is non-finite.

        Args:
            loss (Tensor): The loss to back-propagate.
            step_kwargs (dict, optional): Arguments for optimizer.step.
            zero_kwargs (dict, optional): Arguments for optimizer.zero_grad.
        """
        step_kwargs = step_kwargs or {}
        zero_kwargs = zero_kwargs or {}
        self.last_skip_reason = None
        self._window_loss_bad |= not bool(torch.isfinite(loss).all())
        self.backward(self.scale_loss(loss))
        if not self.should_update():
            return
        reason = None
        if self._window_loss_bad:
            reason = 'loss'
        elif self.check_grads and not self._grads_finite():
            reason = 'gradient'
        if get_world_size() > 1:
            flag = torch.tensor([0.0 if reason is None else 1.0])
            all_reduce(flag, op='max')
            if reason is None and flag.item() > 0:
                reason = 'another rank'
        self._window_loss_bad = False
        if reason is None:
            self.step(**step_kwargs)
        else:
            self.skipped_steps += 1
            self.last_skip_reason = reason
        self.zero_grad(**zero_kwargs)
