"""Smooth random fields: the shared source of every smooth variation in the demo data (deformation, tumour edges, bias)."""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_random_field"]


def _gaussian_interpolation_matrix(length: int, correlation_length: float) -> np.ndarray:
    """``(length, K)`` row-normalised Gaussian weights from K control points spread over an axis."""
    num_nodes = int(np.ceil((length - 1) / correlation_length)) + 1
    nodes = np.linspace(0.0, length - 1, max(num_nodes, 2))
    distance = (np.arange(length)[:, None] - nodes[None, :]) / correlation_length
    weights = np.exp(-0.5 * distance**2)
    return weights / weights.sum(axis=1, keepdims=True)


def smooth_random_field(
    shape: tuple[int, ...], correlation_length: float, rng: np.random.Generator, num_fields: int = 1
) -> np.ndarray:
    """Smooth zero-mean random fields with unit standard deviation.

    Random values on a coarse lattice of control points (one per ``correlation_length`` voxels) are
    interpolated with separable Gaussian weights, which costs far less than filtering a full-size
    white-noise volume.

    Args:
        shape: ``(X, Y, Z)`` output shape.
        correlation_length: distance between control points, in voxels.
        rng: random generator.
        num_fields: number of independent fields F.

    Returns:
        ``(F, X, Y, Z)`` float32 array.
    """
    matrices = [_gaussian_interpolation_matrix(n, correlation_length) for n in shape]
    nodes = rng.standard_normal((num_fields, *(m.shape[1] for m in matrices)))
    field = np.einsum("ai,bj,ck,fijk->fabc", *matrices, nodes, optimize=True)
    field -= field.mean(axis=(1, 2, 3), keepdims=True)
    field /= field.std(axis=(1, 2, 3), keepdims=True)
    return field.astype(np.float32)
