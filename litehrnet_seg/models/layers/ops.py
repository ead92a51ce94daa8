"""Tensor ops of Lite-HRNet that stay exact and export shape-dynamic.

Pure functions on (N, C, H, W) tensors shared by the Lite-HRNet blocks
(Lite-HRNet, Yu et al., CVPR 2021, https://arxiv.org/abs/2104.06403):
channel shuffles that keep the memory format, and resizing and adaptive
pooling that export right for any input size (docs/deployment.md).
"""

import torch
import torch.nn.functional as F


def _is_channels_last(x: torch.Tensor) -> bool:
    # Also true for channel slices of an NHWC tensor (``chunk`` halves).
    return x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel shuffle of ShuffleNet (https://arxiv.org/abs/1707.01083).

    Args:
        x (Tensor): Input of shape (N, C, H, W), C divisible by ``groups``.
        groups (int): Number of groups.

    Returns:
        Tensor: The shuffled tensor, same shape.
    """
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(n, c, h, w)


def concat_shuffle(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``channel_shuffle(torch.cat((x1, x2), 1), 2)`` with a single copy.

    The two-group shuffle of a concatenation interleaves the channels of
    its halves (x1[0], x2[0], x1[1], ...), which is a stack along a new
    axis after the channel axis. Pure data movement, so bitwise equal to
    the official cat + shuffle; keeps x1's memory format.

    Args:
        x1 (Tensor): First half, shape (N, C, H, W).
        x2 (Tensor): Second half, same shape.

    Returns:
        Tensor: Shape (N, 2C, H, W).
    """
    if _is_channels_last(x1):
        y = torch.stack((x1.permute(0, 2, 3, 1), x2.permute(0, 2, 3, 1)), 4)
        return y.flatten(3).permute(0, 3, 1, 2)
    return torch.stack((x1, x2), 2).flatten(1, 2)


def _exporting() -> bool:
    # torch.export / dynamo ONNX, or the TorchScript ONNX exporter's
    # tracer: both record sizes symbolically, so size-driven code exports
    # shape-dynamic where PyTorch's own ops would bake constants.
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def resize_nearest(x: torch.Tensor, size) -> torch.Tensor:
    """Nearest resize to the exact ``size``; the identity when it fits.

    Equals the official fixed scale factor whenever that one is defined,
    and also works for sides not divisible by 32. Traced sizes are
    tensors: comparing them would bake this input's answer into the
    graph, so the tracer always resizes (a same-size nearest resize is
    the identity, exactly).

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        size (tuple[int, int]): Output height and width.

    Returns:
        Tensor: Shape (N, C, *size).
    """
    if not torch.jit.is_tracing() and x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode='nearest')


def _divides(part, whole) -> bool:
    # Only plain ints count: traced or symbolic sizes (a dynamic-shape
    # export) must keep the graph that works for every size.
    return type(part) is int and type(whole) is int and whole % part == 0


def _bin_matrix(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) matrix averaging PyTorch's adaptive-pooling bins.

    Bin i covers [floor(i * size / bins), ceil((i + 1) * size / bins)).
    Under the TorchScript tracer ``size`` and ``bins`` are 0-dim tensors
    (traced sizes); the same integer arithmetic then records a graph that
    rebuilds the matrix for every input size.
    """
    i = torch.arange(bins, device=like.device).unsqueeze(1)
    j = torch.arange(size, device=like.device).unsqueeze(0)
    start = torch.div(i * size, bins, rounding_mode='floor')
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
    inside = (j >= start) & (j < end)
    return inside.to(like.dtype) / (end - start).to(like.dtype)


def adaptive_avg_pool(x: torch.Tensor, size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` that also exports right for any size.

    Exporters (torch.export, ONNX) lower adaptive pooling to a fixed-kernel
    pooling derived from the example input, which is wrong (or fails) for
    sizes whose ratio is not that example's, e.g. sides not divisible by
    32. While exporting, the same bins are averaged with two small
    matrices built from the runtime sizes instead (equal up to float
    rounding); eager and compiled runs keep PyTorch's op.

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        size (tuple[int, int]): Output height and width.

    Returns:
        Tensor: Shape (N, C, *size).
    """
    if not _exporting():
        return F.adaptive_avg_pool2d(x, size)
    height, width = x.shape[-2:]
    if _divides(size[0], height) and _divides(size[1], width):
        # A static-shape export whose bins are equal blocks: plain
        # average pooling, far cheaper in runtimes than two matmuls.
        return F.avg_pool2d(x, (height // size[0], width // size[1]))
    rows = _bin_matrix(x.shape[-2], size[0], x)
    cols = _bin_matrix(x.shape[-1], size[1], x)
    return rows @ x @ cols.transpose(0, 1)
