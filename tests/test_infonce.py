import inspect
import math
from collections.abc import Callable
from typing import Any, cast

import chex
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from deepcrl.losses import binary_nce, contrastive_metrics, infonce, logsumexp_penalty
from deepcrl.nn import ENERGIES, pairwise_energy

VARIANTS = ("forward", "backward", "symmetric")
EPS32 = float(np.finfo(np.float32).eps)
# Each example runs every variant jitted and eagerly; 25 examples per test keep the file fast.
examples = settings(max_examples=12)
# Runs a `chex.TestCase` method twice, with `self.variant` = `jax.jit` and = no jit (typed for
# pyright, which cannot see through chex's curried decorator).
jit_and_eager: Callable[[Callable[..., None]], Callable[..., None]] = cast(
    Any, chex.variants(with_jit=True, without_jit=True)
)


def _tol(scale) -> float:
    # logsumexp of float32 values of magnitude `scale` is exact only to a few ulps of `scale`
    # (x - max, then max + log(Σ)), so identities hold to ~eps·scale, not to a fixed atol.
    return 16 * EPS32 * (1.0 + float(scale)) + 1e-6


# A few batch sizes, shared by every test: each new shape costs a compilation (jitted) or a
# round of per-op compilations (eager), which would dominate the file's run time.
SIZES = (1, 3, 8)


@st.composite
def square_logits(draw, min_b: int = 1, bound: float = 1e4) -> np.ndarray:
    b = draw(st.sampled_from([s for s in SIZES if s >= min_b]))
    elements = st.floats(-bound, bound, width=32, allow_nan=False, allow_infinity=False)
    return draw(hnp.arrays(np.float32, (b, b), elements=elements))


# Module-level loss functions (not lambdas in tests) so jit caches them across examples.
def _forward(logits):
    return infonce(logits, variant="forward")


def _backward(logits):
    return infonce(logits, variant="backward")


def _symmetric(logits):
    return infonce(logits, variant="symmetric")


def _forward_penalised(logits):
    return infonce(logits, variant="forward", logsumexp_penalty=0.1)


LOSSES = {"forward": _forward, "backward": _backward, "symmetric": _symmetric}
MARGINS = (0.0, 2.0, 5.0, 10.0, 20.0, 40.0)


def _loss_and_grad(logits):
    return {name: jax.value_and_grad(fn)(logits) for name, fn in LOSSES.items()}


def _every_loss(logits):
    out = {name: fn(logits) for name, fn in LOSSES.items()}
    return out | {"penalty": logsumexp_penalty(logits), "binary": binary_nce(logits)}


# Built once: a fresh `jax.grad(f)` per example would miss jit's cache.
_penalised_value_and_grad = jax.value_and_grad(_forward_penalised)


def _constant_matrices(rows):
    # Constant rows for forward, constant columns for backward, one constant for symmetric.
    constant = jnp.zeros_like(rows) + rows[0, 0]
    return {
        "forward": _forward(rows),
        "backward": _backward(rows.T),
        "symmetric": _symmetric(constant),
    }


def _losses_with_margins(noise):
    eye = jnp.eye(noise.shape[0], dtype=noise.dtype)
    shifted = noise[None] + jnp.asarray(MARGINS, dtype=noise.dtype)[:, None, None] * eye[None]
    return {name: jax.vmap(fn)(shifted) for name, fn in LOSSES.items()}


class TestInfoNCEProperties(chex.TestCase):
    """The LOSSES.md facts as properties, each run jitted and not jitted."""

    @jit_and_eager
    @examples
    @given(logits=square_logits(bound=1e4))
    def test_nonnegative_and_finite_at_huge_logits(self, logits):
        logits = jnp.asarray(logits)
        out = self.variant(_loss_and_grad)(logits)
        for loss, grad in out.values():
            chex.assert_shape(loss, ())
            chex.assert_shape(grad, logits.shape)
            chex.assert_tree_all_finite((loss, grad))
            # lse_j ℓ_ij ≥ max_j ℓ_ij ≥ ℓ_ii holds exactly in float32 too (max + log(Σ ≥ 1)).
            assert float(loss) >= 0.0
        penalised, grad = self.variant(_penalised_value_and_grad)(logits)
        chex.assert_tree_all_finite((penalised, grad))
        assert float(penalised) >= float(out["forward"][0]) - _tol(float(out["forward"][0]))

    @jit_and_eager
    @examples
    @given(
        offsets=hnp.arrays(
            np.float32, st.sampled_from(SIZES), elements=st.floats(-1e4, 1e4, width=32)
        )
    )
    def test_constant_rows_give_log_b(self, offsets):
        b = offsets.shape[0]
        rows = jnp.broadcast_to(jnp.asarray(offsets)[:, None], (b, b))
        scale = float(np.max(np.abs(offsets)))
        out = self.variant(_constant_matrices)(rows)
        # A constant row makes every goal equally likely: the loss is log B (backward: columns).
        np.testing.assert_allclose(out["forward"], math.log(b), atol=_tol(scale))
        np.testing.assert_allclose(out["backward"], math.log(b), atol=_tol(scale))
        np.testing.assert_allclose(out["symmetric"], 2 * math.log(b), atol=_tol(scale))

    @jit_and_eager
    @examples
    @given(logits=square_logits(min_b=2, bound=1.0))
    def test_large_margin_goes_to_zero(self, logits):
        b = logits.shape[0]
        noise = jnp.asarray(logits)  # in [-1, 1]: off-diagonal logits stay ≤ diagonal - (m - 2)
        out = self.variant(_losses_with_margins)(noise)
        for name, losses in out.items():
            k = 2 if name == "symmetric" else 1
            for m, loss, previous in zip(MARGINS, losses, [math.inf, *losses], strict=False):
                # Exact bound: each row (column) loses at most log(1 + (B-1)e^{-(m-2)}).
                bound = k * math.log1p((b - 1) * math.exp(-(m - 2)))
                assert float(loss) <= bound + _tol(m), (name, m, float(loss), bound)
                # Past m = 2 every off-diagonal logit is below the diagonal and the loss
                # decreases with the margin (below m = 2 only the bound does).
                if m > 2:
                    assert float(loss) <= float(previous) + _tol(m)
            assert float(losses[-1]) < 1e-12  # float32 rounds the tail to 0

    @jit_and_eager
    @examples
    @given(
        logits=square_logits(bound=100.0),
        shifts=hnp.arrays(np.float32, max(SIZES), elements=st.floats(-100, 100, width=32)),
    )
    def test_shift_invariance(self, logits, shifts):
        b = logits.shape[0]
        logits = jnp.asarray(logits)
        shift = jnp.asarray(shifts[:b])
        fn = self.variant(_loss_and_grad)
        base = fn(logits)
        by_row = fn(logits + shift[:, None])
        by_col = fn(logits + shift[None, :])
        by_all = fn(logits + shift[0])
        tol = _tol(200.0)
        np.testing.assert_allclose(by_row["forward"][0], base["forward"][0], atol=tol)
        np.testing.assert_allclose(by_col["backward"][0], base["backward"][0], atol=tol)
        for name in VARIANTS:
            np.testing.assert_allclose(by_all[name][0], base[name][0], atol=tol)

    @jit_and_eager
    @examples
    @given(logits=square_logits(bound=1e3), data=st.data())
    def test_permutation_equivariance(self, logits, data):
        b = logits.shape[0]
        perm = np.asarray(data.draw(st.permutations(range(b))), dtype=np.int32)
        logits = jnp.asarray(logits)
        permuted = logits[perm][:, perm]  # P ℓ Pᵀ: relabel the pairs, positives stay diagonal
        fn = self.variant(_every_loss)
        # Same numbers summed in another order: equal up to float32 summation rounding.
        chex.assert_trees_all_close(fn(permuted), fn(logits), atol=_tol(1e3), rtol=1e-6)

    @jit_and_eager
    @examples
    @given(logits=square_logits(bound=30.0))
    def test_gradient_is_softmax_minus_onehot(self, logits):
        b = logits.shape[0]
        logits = jnp.asarray(logits)
        eye = jnp.eye(b, dtype=jnp.float32)
        out = self.variant(_loss_and_grad)(logits)
        forward = (jax.nn.softmax(logits, axis=1) - eye) / b
        backward = (jax.nn.softmax(logits, axis=0) - eye) / b
        chex.assert_trees_all_close(out["forward"][1], forward, atol=1e-6)
        chex.assert_trees_all_close(out["backward"][1], backward, atol=1e-6)
        chex.assert_trees_all_close(out["symmetric"][1], forward + backward, atol=1e-6)
        # Rows of a softmax minus a one-hot sum to zero (columns, for backward).
        np.testing.assert_allclose(jnp.sum(out["forward"][1], axis=1), 0.0, atol=1e-6)
        np.testing.assert_allclose(jnp.sum(out["backward"][1], axis=0), 0.0, atol=1e-6)
        # Penalty: ∂/∂ℓ_ij c·mean_i lse_i² = (2c/B)·lse_i·softmax_ij.
        lse = jax.nn.logsumexp(logits, axis=1, keepdims=True)
        penalty_grad = 2 * 0.1 / b * lse * jax.nn.softmax(logits, axis=1)
        _, grad = self.variant(_penalised_value_and_grad)(logits)
        chex.assert_trees_all_close(grad, forward + penalty_grad, atol=1e-5)


def test_mutual_information_bound():
    # x ~ N(0, 1), y = ρx + √(1-ρ²)ε: I(x; y) = -½ log(1 - ρ²). InfoNCE with any critic gives
    # E[log B - L] ≤ I; with the optimal critic log p(y|x)/p(y) it is close to I when I ≪ log B.
    rng = np.random.default_rng(0)
    rho, b, batches = 0.6, 256, 16
    mi = -0.5 * math.log(1 - rho**2)

    def critic(x, y, *, optimal: bool):
        if optimal:
            log_conditional = -((y[None, :] - rho * x[:, None]) ** 2) / (2 * (1 - rho**2))
            return log_conditional + y[None, :] ** 2 / 2  # - log p(y), up to a constant
        return -((y[None, :] - x[:, None]) ** 2)  # a mis-specified critic

    for optimal in (True, False):
        estimates = []
        for _ in range(batches):
            x = rng.standard_normal(b)
            y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(b)
            logits = jnp.asarray(critic(x, y, optimal=optimal), dtype=jnp.float32)
            estimates.append(math.log(b) - float(infonce(logits)))
        mean = float(np.mean(estimates))
        stderr = float(np.std(estimates) / math.sqrt(batches))
        assert mean <= mi + 3 * stderr, (optimal, mean, mi)
        if optimal:
            assert mean >= mi - 3 * stderr - 0.03, (mean, mi)

    # Independent pairs: no critic can certify information.
    x, y = rng.standard_normal(b), rng.standard_normal(b)
    logits = jnp.asarray(critic(x, y, optimal=True), dtype=jnp.float32)
    assert math.log(b) - float(infonce(logits)) <= 0.1


def test_shift_invariance_is_specific_to_the_variant():
    # The invariance checks above can fail: forward InfoNCE does change with column shifts,
    # backward with row shifts, and symmetric with either.
    logits = jnp.asarray([[2.0, 0.0, 1.0], [0.5, 1.0, -1.0], [0.0, 3.0, 0.0]])
    shift = jnp.asarray([0.0, 1.0, -2.0])
    for name, moved in (
        ("forward", logits + shift[None, :]),
        ("backward", logits + shift[:, None]),
        ("symmetric", logits + shift[:, None]),
        ("symmetric", logits + shift[None, :]),
    ):
        assert abs(float(LOSSES[name](moved)) - float(LOSSES[name](logits))) > 0.1


def test_matches_numpy_reference():
    logits = np.random.default_rng(1).normal(size=(5, 5)) * 3
    lse_rows = np.log(np.exp(logits).sum(1))
    lse_cols = np.log(np.exp(logits).sum(0))
    diag = np.diag(logits)
    forward, backward = np.mean(lse_rows - diag), np.mean(lse_cols - diag)
    x = jnp.asarray(logits, dtype=jnp.float32)
    np.testing.assert_allclose(infonce(x), forward, rtol=1e-5)
    np.testing.assert_allclose(infonce(x, variant="backward"), backward, rtol=1e-5)
    np.testing.assert_allclose(infonce(x, variant="symmetric"), forward + backward, rtol=1e-5)
    penalised = infonce(x, variant="backward", logsumexp_penalty=0.01)
    np.testing.assert_allclose(penalised, backward + 0.01 * np.mean(lse_rows**2), rtol=1e-5)
    np.testing.assert_allclose(logsumexp_penalty(x), np.mean(lse_rows**2), rtol=1e-5)


def test_binary_nce():
    logits = np.random.default_rng(2).normal(size=(6, 6)) * 4
    labels = np.eye(6)
    # log σ(x) = -log(1 + e^{-x}), in float64.
    reference = -np.mean(
        labels * -np.logaddexp(0, -logits) + (1 - labels) * -np.logaddexp(0, logits)
    )
    x = jnp.asarray(logits, dtype=jnp.float32)
    np.testing.assert_allclose(binary_nce(x), reference, rtol=1e-5)
    np.testing.assert_allclose(binary_nce(jnp.zeros((4, 4))), math.log(2), rtol=1e-6)
    # A real classification loss: gradient (σ(ℓ) - I)/B², pushing positives up, negatives down.
    grad = jax.grad(binary_nce)(x)
    expected = (jax.nn.sigmoid(x) - jnp.eye(6, dtype=jnp.float32)) / 36
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    off_diagonal = np.asarray(grad)[~np.eye(6, dtype=bool)]
    assert bool(jnp.all(jnp.diagonal(grad) < 0)) and bool(np.all(off_diagonal > 0))
    # Separating logits drive it to zero; huge logits stay finite in value and gradient.
    signs = 2 * jnp.eye(6, dtype=jnp.float32) - 1
    assert float(binary_nce(40.0 * signs)) < 1e-12
    wrong = 1e4 * -signs
    value, grad = jax.value_and_grad(binary_nce)(wrong)
    chex.assert_tree_all_finite((value, grad))
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)


def test_contrastive_metrics():
    logits = jnp.asarray(
        [[3.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, -1.0, 5.0]], dtype=jnp.float32
    )  # rows 0 and 2 pick their diagonal, row 1 does not
    metrics = jax.jit(contrastive_metrics)(logits)
    chex.assert_tree_all_finite(metrics)
    chex.assert_tree_shape_prefix(metrics, ())
    assert set(metrics) == {"categorical_accuracy", "logits_pos", "logits_neg", "logsumexp"}
    np.testing.assert_allclose(metrics["categorical_accuracy"], 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(metrics["logits_pos"], 3.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["logits_neg"], (1.0 + 0.0 + 2.0 + 0.0 + 0.0 - 1.0) / 6)
    lse = np.log(np.exp(np.asarray(logits, dtype=np.float64)).sum(1)).mean()
    np.testing.assert_allclose(metrics["logsumexp"], lse, rtol=1e-6)
    for value in metrics.values():
        assert value.dtype == jnp.float32 and value.shape == ()
    huge = contrastive_metrics(1e4 * logits)
    chex.assert_tree_all_finite(huge)


@pytest.mark.parametrize("fn", [infonce, binary_nce, logsumexp_penalty, contrastive_metrics])
@pytest.mark.parametrize("shape", [(3, 4), (4,), (2, 2, 2)])
def test_bad_shapes_raise(fn, shape):
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's TypeCheckError is a TypeError
        fn(jnp.zeros(shape))
    # Without runtime type checking the functions still refuse, with a clear ValueError.
    with pytest.raises(ValueError, match="square"):
        inspect.unwrap(fn)(jnp.zeros(shape))


def test_unknown_variant_and_tiny_batches():
    with pytest.raises(ValueError, match="variant"):
        inspect.unwrap(infonce)(jnp.zeros((2, 2)), variant="sideways")
    with pytest.raises((ValueError, TypeError)):
        infonce(jnp.zeros((2, 2)), variant="sideways")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="at least 2"):
        inspect.unwrap(contrastive_metrics)(jnp.zeros((1, 1)))
    np.testing.assert_allclose(infonce(jnp.full((1, 1), 7.0)), 0.0)  # one pair: nothing to classify


def test_low_precision_inputs_are_cast_up():
    logits = jr.normal(jr.key(0), (8, 8)).astype(jnp.bfloat16) * 20
    reference = infonce(logits.astype(jnp.float32), variant="symmetric", logsumexp_penalty=0.1)
    low = infonce(logits, variant="symmetric", logsumexp_penalty=0.1)
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, reference, rtol=1e-6)
    assert binary_nce(logits).dtype == jnp.float32
    assert all(v.dtype == jnp.float32 for v in contrastive_metrics(logits).values())


@pytest.mark.parametrize("energy", sorted(ENERGIES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_works_with_every_energy(energy, variant, getkey):
    b, dim = 16, 8
    phi = jr.normal(getkey(), (b, dim)) * 10
    psi = phi.at[: b // 2].add(0.1 * jr.normal(getkey(), (b // 2, dim)))
    psi = psi.at[0].set(phi[0])  # φ = ψ exactly: the L2 energy's ε keeps this gradient finite

    def loss(phi, psi):
        logits = pairwise_energy(phi, psi, energy)
        return infonce(logits, variant=variant, logsumexp_penalty=0.1) + binary_nce(logits)

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(phi, psi)
    chex.assert_shape(value, ())
    chex.assert_trees_all_equal_shapes(grads, (phi, psi))
    chex.assert_tree_all_finite((value, grads))
    # A small gradient step lowers the loss: the gradient points somewhere useful.
    step = 1e-3 / (1e-12 + max(float(jnp.max(jnp.abs(g))) for g in grads))
    lower = loss(phi - step * grads[0], psi - step * grads[1])
    assert float(lower) < float(value)


@pytest.mark.parametrize("penalty", [math.nan, math.inf, -math.inf, -0.1])
def test_logsumexp_penalty_must_be_finite_and_non_negative(penalty):
    with pytest.raises(ValueError, match=f"logsumexp_penalty must be .*got {penalty}"):
        infonce(jnp.eye(3), logsumexp_penalty=penalty)


@pytest.mark.parametrize("fn", [infonce, binary_nce, logsumexp_penalty, contrastive_metrics])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_integer_and_bool_logits_are_cast_to_float32(fn, dtype):
    logits = jnp.asarray([[3, 0, 1], [0, 2, 0], [1, 1, 4]]).astype(dtype)
    # Unwrapped: the signatures say Real (bool is refused by the runtime type check).
    out = inspect.unwrap(fn)(logits)
    chex.assert_trees_all_close(out, fn(logits.astype(jnp.float32)))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(out))
    if dtype != jnp.bool_:
        chex.assert_trees_all_close(fn(logits), out)
