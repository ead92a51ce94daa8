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

    ``BaseModel.train_step`` computes the losses and hands their sum to
    ``optim_wrapper.update_params``, which does backward, step and
    zero_grad. This is the only place between the backward pass and the
    parameter update, so the check lives here (a hook's
    ``after_train_iter`` runs after the step, too late to skip it). On a
    non-finite loss or gradient the optimizer step (and with it the
    optimizer state update, e.g. Adam's moments) is skipped and the
    gradients are zeroed; :class:`NonFiniteLossHook` then logs it
    (``policy='skip'``) or stops training (``policy='raise'``).

    The backward pass still runs for a non-finite loss so that
    ``DistributedDataParallel`` ranks stay in step; in distributed runs
    the skip decision is all-reduced, so all ranks skip together. With
    gradient accumulation the whole accumulation window is skipped if any
    of its losses was non-finite. Gradient clipping (``clip_grad``) works
    as in ``OptimWrapper`` and only sees finite gradients. Not for AMP:
    ``AmpOptimWrapper``'s GradScaler already skips steps with non-finite
    gradients.

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
