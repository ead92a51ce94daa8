"""The optimised inference path, keeping the model's mmseg interface."""

from pathlib import Path

import torch.nn as nn
from mmengine.config import Config

from ..checkpoint import build_model, load_config
from ..deploy import DEFAULT_STEPS, TensorModel, optimize


def optimize_for_inference(
    model: nn.Module, compile: bool = False, compile_options: dict = None
) -> nn.Module:
    """An optimised copy of a segmentor or pose estimator, same interface.

    The backbone's fuse sums run coarse first, BatchNorms are folded into
    their convolutions and the weights moved to channels_last by
    :func:`litehrnet_seg.deploy.optimize`; the copy keeps
    ``test_step``, ``predict``, slide mode, flip test and ``dataset_meta``,
    so it drops into any place an eager model in eval mode is used
    (inferencers, ``tools/test.py``). Outputs match eager within 1e-4.

    Args:
        model (nn.Module): An mmseg segmentor or top-down pose estimator.
        compile (bool): Also ``torch.compile`` the backbone and the head's
            forward (one-off compilation cost per input size).
        compile_options (dict, optional): Keyword arguments of
            ``torch.compile``.

    Returns:
        nn.Module: The optimised copy, in eval mode (``model`` is kept).
    """
    # optimize() copies the model and returns a tensor-model wrapper; the
    # segmentor inside it carries the folded, channels_last weights.
    fast = optimize(TensorModel(model.eval()), DEFAULT_STEPS).model.model
    if compile:
        import torch

        options = compile_options or {}
        fast.backbone.compile(**options)
        head = getattr(fast, 'decode_head', None) or fast.head
        # Heads call self.forward from predict(), not __call__.
        head.forward = torch.compile(head.forward, **options)
    return fast.eval()


class FastPathModelMixin:
    """Model building shared by the inferencers.

    :meth:`_read_config` remembers how to build the model (the
    inferencer's base class builds it later, in ``_init_model``);
    :meth:`_build_model` then loads it strictly with
    :func:`~litehrnet_seg.checkpoint.build_model` and optimises it.
    """

    def _read_config(
        self,
        config: str | Path,
        cfg_options: dict | None,
        optimize: bool,
        compile: bool,
    ) -> Config:
        """The config with ``cfg_options`` merged; remembers the build."""
        self.build = dict(
            config=str(config),
            cfg_options=cfg_options,
            optimize=optimize,
            compile=compile,
        )
        cfg = load_config(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        return cfg

    def _prepare_model(self, model: nn.Module) -> nn.Module:
        """Hook between loading and optimising; the identity here."""
        return model

    def _build_model(self, weights: str | None, device: str) -> nn.Module:
        """The remembered model with ``weights``, on ``device``, in eval."""
        b = self.build
        model = build_model(b['config'], weights, cfg_options=b['cfg_options'])
        model = self._prepare_model(model)
        if b['optimize']:
            model = optimize_for_inference(model, b['compile'])
        return model.to(device).eval()
