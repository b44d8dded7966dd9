import functools
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

EnergyName = Literal["l2", "sq_l2", "dot", "cosine"]
"""The critic energies: `-‖φ-ψ‖₂`, `-‖φ-ψ‖²`, `φ·ψ` and per-row cosine similarity."""

EPS = 1e-6
"""Keeps gradients finite where φ = ψ (inside `neg_l2`'s square root) and at zero norm
(`cosine` takes norms below ε as ε)."""


def neg_l2(
    phi: Float[Array, "b dim"], psi: Float[Array, "c dim"], *, eps: float = EPS
) -> Float[Array, "b c"]:
    """Pairwise negative L2 distance `-√(‖φ_i - ψ_j‖² + ε)`, the default critic energy.

    The ε inside the square root makes the gradient finite (zero) at φ_i = ψ_j, where the
    plain distance has a NaN gradient. The derivative is computed with matmuls, so the
    backward pass stores no `b × c × dim` tensor.
    """
    _check_pair(phi, psi)
    return -jnp.sqrt(_sq_dist(phi, psi) + eps)


def neg_sq_l2(phi: Float[Array, "b dim"], psi: Float[Array, "c dim"]) -> Float[Array, "b c"]:
    """Pairwise negative squared L2 distance `-‖φ_i - ψ_j‖²`."""
    _check_pair(phi, psi)
    return -_sq_dist(phi, psi)


def dot(phi: Float[Array, "b dim"], psi: Float[Array, "c dim"]) -> Float[Array, "b c"]:
    """Pairwise dot product `φ_i · ψ_j`."""
    _check_pair(phi, psi)
    return phi @ psi.T


def cosine(
    phi: Float[Array, "b dim"], psi: Float[Array, "c dim"], *, eps: float = EPS
) -> Float[Array, "b c"]:
    """Pairwise cosine similarity, each row normalised by its own norm (never the batch's)."""
    _check_pair(phi, psi)
    return _unit_rows(phi, eps) @ _unit_rows(psi, eps).T


def _check_pair(phi: Array, psi: Array) -> None:
    # Other ranks broadcast into garbage (or a scalar) rather than failing.
    if phi.ndim != 2 or psi.ndim != 2 or phi.shape[1] != psi.shape[1]:
        raise ValueError(
            "An energy takes two batches of representations, (b, dim) and (c, dim), got "
            f"shapes {phi.shape} and {psi.shape}."
        )


ENERGIES: dict[str, Callable[[Array, Array], Array]] = {
    "l2": neg_l2,
    "sq_l2": neg_sq_l2,
    "dot": dot,
    "cosine": cosine,
}


def energy_fn(name: str) -> Callable[[Array, Array], Array]:
    """The pairwise energy called `name` (one of `ENERGIES`); a `ValueError` otherwise."""
    try:
        return ENERGIES[name]
    except KeyError:
        raise ValueError(f"Unknown energy {name!r}; expected one of {sorted(ENERGIES)}.") from None


def pairwise_energy(
    phi: Float[Array, "b dim"], psi: Float[Array, "c dim"], name: EnergyName = "l2"
) -> Float[Array, "b c"]:
    """The `b × c` logits matrix `f_ij = energy(φ_i, ψ_j)` for the energy called `name`."""
    return energy_fn(name)(phi, psi)


@jax.custom_jvp
def _sq_dist(phi: Float[Array, "b dim"], psi: Float[Array, "c dim"]) -> Float[Array, "b c"]:
    # Explicit differences rather than ‖φ‖² + ‖ψ‖² - 2φ·ψ: exact near φ = ψ (the positives),
    # where the expanded form cancels catastrophically in float32.
    return jnp.sum(jnp.square(phi[:, None, :] - psi[None, :, :]), axis=-1)


@_sq_dist.defjvp
def _sq_dist_jvp(primals: tuple[Array, Array], tangents: tuple[Array, Array]):
    # The derivative 2(φ_i - ψ_j)·(dφ_i - dψ_j) written as matmuls. Differentiating the
    # differences instead builds (and in reverse mode stores) a b × c × dim tensor: at
    # b = c = 1024 that made a CRL update 40× slower than at 256 (benchmarks: profile).
    # HIGHEST keeps float32 matmuls (no TF32 on GPUs) for the φ·dφ - ψ·dφ cancellation.
    phi, psi = primals
    dphi, dpsi = tangents
    matmul = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
    row = jnp.sum(phi * dphi, axis=-1)[:, None] - matmul(dphi, psi.T)
    col = jnp.sum(psi * dpsi, axis=-1)[None, :] - matmul(phi, dpsi.T)
    return _sq_dist(phi, psi), 2 * (row + col)


def _unit_rows(x: Float[Array, "n dim"], eps: float) -> Float[Array, "n dim"]:
    # A floor, not `‖x‖² + ε`: adding ε shrinks rows of norm near √ε (1e-3), whose
    # cosine with themselves fell to 0.5 there and towards 0 below.
    sq_norm = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x / jnp.sqrt(jnp.maximum(sq_norm, eps**2))
