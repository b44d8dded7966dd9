import math
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Real

from ._misc import upcast

InfoNCEVariant = Literal["forward", "backward", "symmetric"]
"""The softmax InfoNCE classifies with: over goals (rows), state-actions (columns) or both."""

_VARIANTS = ("forward", "backward", "symmetric")


def _check_square(logits: Array, *, min_size: int = 1) -> None:
    # Runtime jaxtyping checks catch this too, but only when enabled: users get a clear error.
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be a square (b, b) matrix, got shape {logits.shape}.")
    if logits.shape[0] < min_size:
        raise ValueError(f"logits must have at least {min_size} rows, got shape {logits.shape}.")


def _row_logsumexp(logits: Float[Array, "b b"]) -> Float[Array, " b"]:
    return jax.nn.logsumexp(logits, axis=1)


def infonce(
    logits: Real[Array, "b b"],
    *,
    variant: InfoNCEVariant = "forward",
    logsumexp_penalty: float = 0.0,
) -> Float[Array, ""]:
    r"""InfoNCE on a `b × b` logits matrix whose positives are on the diagonal.

    With $\ell_{ij} = f(s_i, a_i, g_j)$:

    - `"forward"`: $\frac1b\sum_i \big[-\ell_{ii} + \operatorname{logsumexp}_j \ell_{ij}\big]$,
      each state-action classifies its goal among the batch's goals (the CRL default);
    - `"backward"`: the same with the logsumexp over $i$ (columns): each goal classifies
      its state-action;
    - `"symmetric"`: the sum of the two.

    The penalty $c\cdot\frac1b\sum_i(\operatorname{logsumexp}_j \ell_{ij})^2$ is added for
    every variant; it pins the per-row constant that forward InfoNCE leaves free.
    The loss is computed in (at least) float32; integer logits are cast to float32.

    **Arguments:**

    - `logits`: the square logits matrix.
    - `variant`: `"forward"`, `"backward"` or `"symmetric"`.
    - `logsumexp_penalty`: the coefficient $c \geq 0$ of the penalty, finite (0.1 in the
      depth-scaling work, 0.01 in the original CRL).

    **Returns:** the scalar loss (mean over the batch).
    """
    if variant not in _VARIANTS:
        raise ValueError(f"Unknown InfoNCE variant {variant!r}; expected one of {_VARIANTS}.")
    # `not c >= 0` alone lets inf through: the loss would be inf or NaN at every step.
    if not (math.isfinite(logsumexp_penalty) and logsumexp_penalty >= 0):
        raise ValueError(f"logsumexp_penalty must be finite and >= 0, got {logsumexp_penalty}.")
    logits = upcast(logits)
    _check_square(logits)
    positives = jnp.diagonal(logits)
    loss = jnp.zeros((), logits.dtype)
    if variant in ("forward", "symmetric"):
        loss = loss + jnp.mean(_row_logsumexp(logits) - positives)
    if variant in ("backward", "symmetric"):
        loss = loss + jnp.mean(jax.nn.logsumexp(logits, axis=0) - positives)
    if logsumexp_penalty != 0.0:
        loss = loss + logsumexp_penalty * _penalty(logits)
    return loss


def _penalty(logits: Float[Array, "b b"]) -> Float[Array, ""]:
    return jnp.mean(jnp.square(_row_logsumexp(logits)))


def logsumexp_penalty(logits: Real[Array, "b b"]) -> Float[Array, ""]:
    r"""The logsumexp² regulariser, without its coefficient.

    $$\frac1b\sum_i\big(\operatorname{logsumexp}_j \ell_{ij}\big)^2$$

    **Arguments:**

    - `logits`: the square logits matrix.

    **Returns:** the scalar penalty, in (at least) float32.
    """
    logits = upcast(logits)
    _check_square(logits)
    return _penalty(logits)


def binary_nce(logits: Real[Array, "b b"]) -> Float[Array, ""]:
    r"""Binary NCE: sigmoid cross-entropy of every pair against the identity labels.

    $$-\frac{1}{b^2}\sum_{i,j}\Big[\delta_{ij}\log\sigma(\ell_{ij})
      + (1-\delta_{ij})\log\sigma(-\ell_{ij})\Big]$$

    Weighting: a plain mean over all $b^2$ entries (as the original CRL code), so the $b$
    positives carry total weight $1/b$ and the $b(b-1)$ negatives $(b-1)/b$. Each term is a
    `jax.nn.log_sigmoid`, finite for any finite logit.

    **Arguments:**

    - `logits`: the square logits matrix.

    **Returns:** the scalar loss, in (at least) float32.
    """
    logits = upcast(logits)
    _check_square(logits)
    labels = jnp.eye(logits.shape[0], dtype=bool)
    # log σ(-ℓ) = log(1 - σ(ℓ)): the negative term, without cancellation.
    log_likelihood = jnp.where(labels, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
    return -jnp.mean(log_likelihood)


def contrastive_metrics(logits: Real[Array, "b b"]) -> dict[str, Float[Array, ""]]:
    """Diagnostics of a logits matrix, for logging next to the loss.

    **Arguments:**

    - `logits`: the square logits matrix, `b >= 2` (so there are negatives).

    **Returns:** a dict of float32 scalars:

    - `"categorical_accuracy"`: fraction of rows whose argmax is the diagonal;
    - `"logits_pos"`: mean diagonal (positive) logit;
    - `"logits_neg"`: mean off-diagonal (negative) logit;
    - `"logsumexp"`: mean row logsumexp.
    """
    logits = upcast(logits)
    _check_square(logits, min_size=2)
    b = logits.shape[0]
    diagonal = jnp.eye(b, dtype=bool)
    hits = jnp.argmax(logits, axis=1) == jnp.arange(b)
    return {
        "categorical_accuracy": jnp.mean(hits.astype(logits.dtype)),
        "logits_pos": jnp.mean(jnp.diagonal(logits)),
        "logits_neg": jnp.sum(jnp.where(diagonal, 0.0, logits)) / (b * (b - 1)),
        "logsumexp": jnp.mean(_row_logsumexp(logits)),
    }
