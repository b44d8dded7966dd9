import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from deepcrl.losses import MSE, AbstractValueLoss, HLGauss, TwoHot
from deepcrl.losses._misc import upcast

EPS32 = float(np.finfo(np.float32).eps)
# Every example builds a new loss (static hyper-parameters), so the jitted variant compiles
# once per example: 10 examples per variant (each with 16 targets) keep the file fast.
examples = settings(max_examples=10)
# Runs a `chex.TestCase` method twice, with `self.variant` = `jax.jit` and = no jit (typed for
# pyright, which cannot see through chex's curried decorator).
jit_and_eager: Callable[[Callable[..., None]], Callable[..., None]] = cast(
    Any, chex.variants(with_jit=True, without_jit=True)
)
# Few distinct shapes: each new one costs compilations.
NUM_BINS = (2, 51)
NUM_TARGETS = 16


@st.composite
def supports(draw) -> tuple[float, float]:
    # Bounds exact in float32, like the edges and atoms built from them.
    v_min = draw(st.floats(-100, 100, width=32))
    v_max = float(np.float32(v_min + draw(st.floats(0.5, 200, width=32))))
    return v_min, v_max


@st.composite
def hl_gauss(draw, min_ratio: float = 0.05, max_ratio: float = 5.0) -> HLGauss:
    v_min, v_max = draw(supports())
    num_bins = draw(st.sampled_from(NUM_BINS))
    ratio = draw(st.floats(min_ratio, max_ratio))
    return HLGauss(v_min, v_max, num_bins, sigma_ratio=ratio)


@st.composite
def two_hot(draw) -> TwoHot:
    v_min, v_max = draw(supports())
    return TwoHot(v_min, v_max, draw(st.sampled_from(NUM_BINS)))


def _targets(draw, loss: HLGauss | TwoHot, *, low: float, high: float) -> np.ndarray:
    """Targets in [low, high], with support points (edges, centres, atoms) mixed in."""
    # The float32 numbers inside [low, high].
    low32, high32 = np.float32(low), np.float32(high)
    low32 = low32 if low32 >= low else np.nextafter(low32, np.float32(np.inf))
    high32 = high32 if high32 <= high else np.nextafter(high32, np.float32(-np.inf))
    floats = st.floats(float(low32), float(high32), width=32)
    values = draw(st.lists(floats, min_size=NUM_TARGETS, max_size=NUM_TARGETS))
    specials = np.asarray(loss.support if isinstance(loss, TwoHot) else loss.edges)
    picks = draw(st.lists(st.integers(0, len(specials) - 1), max_size=3))
    for slot, pick in enumerate(picks):
        values[slot] = float(np.clip(specials[pick], low32, high32))
    return np.asarray(values, dtype=np.float32)


def _sum_rounding(loss: HLGauss | TwoHot) -> float:
    """How far from 1 a float32 histogram (or softmax) may sum: one rounding per bin plus the
    normaliser's own few ulps, common to every bin."""
    return 2 * (loss.num_bins + 2) * EPS32


def _reference_probs(loss: HLGauss, target: np.ndarray) -> np.ndarray:
    """HL-Gauss histograms in float64 (same float32 edges), at the *unclipped* targets."""
    edges = np.asarray(loss.edges, np.float64)
    z = (edges[None, :] - np.asarray(target, np.float64)[:, None]) / loss.sigma
    a, b = z[:, :-1], z[:, 1:]
    flip = a + b > 0  # lower-tail form: float64 log Φ is accurate to |z| ~ 1e150
    lo, hi = np.where(flip, -b, a), np.where(flip, -a, b)
    log_hi = scipy.special.log_ndtr(hi)
    log_mass = log_hi + np.log(-np.expm1(scipy.special.log_ndtr(lo) - log_hi))
    return np.exp(log_mass - scipy.special.logsumexp(log_mass, axis=1, keepdims=True))


def _quantisation_bias(loss: HLGauss, target: np.ndarray, terms: int = 20) -> np.ndarray:
    """E[c(Y)] - y for Y ~ N(y, σ²) on an unbounded grid of bins (derivation in the test)."""
    width, ratio = loss.bin_width, loss.sigma_ratio
    phase = 2 * np.pi * (np.asarray(target, np.float64) - loss.v_min) / width
    k = np.arange(1, terms + 1)[:, None]
    damping = np.exp(-2 * np.pi**2 * k**2 * ratio**2)
    return width / np.pi * np.sum(np.sin(k * phase[None]) * damping / k, axis=0)


def _hist_and_loss(loss, target, logits):
    probs = loss.target_probs(target)
    value, grad = jax.value_and_grad(lambda x: jnp.sum(loss.loss(x, target)))(logits)
    return {"probs": probs, "total": value, "grad": grad, "value": loss.value(logits)}


class TestHLGauss(chex.TestCase):
    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(min_ratio=1e-6, max_ratio=10.0))
    def test_valid_histogram_for_any_finite_target(self, data, loss):
        # Targets anywhere in float32's finite range, far outside the support included.
        targets = _targets(data.draw, loss, low=-3e38, high=3e38)
        logits = data.draw(
            hnp.arrays(np.float32, (NUM_TARGETS, loss.num_bins), elements=st.floats(-1e4, 1e4))
        )
        fn = self.variant(lambda t, x: _hist_and_loss(loss, t, x))
        out = fn(jnp.asarray(targets), jnp.asarray(logits))
        probs, total, grad, value = out["probs"], out["total"], out["grad"], out["value"]
        chex.assert_shape(probs, (NUM_TARGETS, loss.num_bins))
        chex.assert_shape(value, (NUM_TARGETS,))
        chex.assert_trees_all_equal_shapes(grad, logits)
        chex.assert_tree_all_finite((probs, total, grad, value))
        assert bool(jnp.all(probs >= 0))
        np.testing.assert_allclose(jnp.sum(probs, axis=-1), 1.0, atol=_sum_rounding(loss))
        assert float(total) >= 0  # a cross-entropy
        centres = np.asarray(loss.centres)
        slack = _sum_rounding(loss) * np.max(np.abs(centres))  # a convex combination
        assert bool(jnp.all((value >= centres[0] - slack) & (value <= centres[-1] + slack)))

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(max_ratio=3.0))
    def test_matches_float64_reference(self, data, loss):
        # Out to 40σ and to 8 clip margins beyond the support: past the clip margin
        # (110 σ²/ς) the result must equal the float64 value at the unclipped target.
        reach = max(40 * loss.sigma, 8 * 110 * loss.sigma**2 / loss.bin_width)
        targets = _targets(data.draw, loss, low=loss.v_min - reach, high=loss.v_max + reach)
        probs = self.variant(loss.target_probs)(jnp.asarray(targets))
        reference = _reference_probs(loss, targets)
        # Rounding the standardised edges z = (e - y)/σ costs ≈ eps·|z| each, which
        # log Φ(z) ≈ -z²/2 turns into ≈ eps·z² in the log-masses; only bins within a few σ
        # of the target carry mass, so the z that matters is the target's distance to the
        # support in σ plus a few σ and one bin. The clip margin puts a cap on it.
        margin = 110 * loss.sigma / loss.bin_width
        outside = np.maximum(loss.v_min - targets, targets - loss.v_max).clip(min=0) / loss.sigma
        z = np.minimum(outside, margin) + 4 + 1 / loss.sigma_ratio
        tol = 2e-6 + 4 * EPS32 * z[:, None] ** 2
        assert np.all(np.abs(np.asarray(probs) - reference) <= tol)

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(min_ratio=0.3, max_ratio=3.0))
    def test_interior_mean_is_unbiased(self, data, loss):
        # Derivation: on an unbounded grid, c(u) - u = (ς/π) Σ_k sin(2πk(u - v_min)/ς)/k (a
        # sawtooth), and E[sin(ω(Y - v_min))] = sin(ω(y - v_min)) e^{-ω²σ²/2}, so
        #   E[c(Y)] - y = (ς/π) Σ_k sin(2πk(y - v_min)/ς) e^{-2π²k²r²}/k,  r = σ/ς,
        # bounded by (ς/π) Σ_k e^{-2π²k²r²}/k (≈ 5e-6 ς at r = 0.75; ≈ 0.054 ς at r = 0.3).
        # Six σ inside the support the renormalisation moves the mean by < 1e-8 σ.
        inside = 6 * loss.sigma
        assume(loss.v_max - loss.v_min > 2 * inside)
        targets = _targets(data.draw, loss, low=loss.v_min + inside, high=loss.v_max - inside)
        fn = self.variant(lambda t: loss.target_probs(t) @ loss.centres)
        mean = np.asarray(fn(jnp.asarray(targets)), np.float64)
        k = np.arange(1, 21)
        bound = (
            loss.bin_width / np.pi * np.sum(np.exp(-2 * np.pi**2 * k**2 * loss.sigma_ratio**2) / k)
        )
        # float32: Σ p_i c_i is exact to ≈ (m + 2) ulps of max |c| (Σ p_i is 1 only to that).
        scale = max(abs(loss.v_min), abs(loss.v_max))
        rounding = _sum_rounding(loss) * scale + 1e-6 * loss.bin_width
        bias = mean - targets
        assert np.all(np.abs(bias) <= bound + rounding)
        np.testing.assert_allclose(bias, _quantisation_bias(loss, targets), atol=rounding)

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(max_ratio=3.0))
    def test_edges_bias_inwards(self, data, loss):
        # Mass beyond an edge is cut and renormalised: near v_min the mean sits above the
        # target (near v_max below), by at least min(ς/2 - σ, ≈ 0.1σ) ≫ float32 rounding.
        assume(loss.v_max - loss.v_min >= 7 * loss.sigma)
        offsets = _targets(data.draw, loss, low=0.0, high=loss.sigma)
        offsets = np.clip(offsets - loss.v_min, 0, loss.sigma)  # specials land at offset 0
        low = jnp.asarray(loss.v_min + offsets, jnp.float32)
        high = jnp.asarray(loss.v_max - offsets, jnp.float32)
        fn = self.variant(lambda t: loss.target_probs(t) @ loss.centres)
        assert bool(jnp.all(fn(low) > low))
        assert bool(jnp.all(fn(high) < high))

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(min_ratio=1e-2, max_ratio=10.0))
    def test_mean_is_monotone_in_the_target(self, data, loss):
        span = loss.v_max - loss.v_min
        targets = np.sort(_targets(data.draw, loss, low=loss.v_min - span, high=loss.v_max + span))
        fn = self.variant(lambda t: loss.target_probs(t) @ loss.centres)
        means = np.asarray(fn(jnp.asarray(targets)))
        # Y ~ N(y, σ²) restricted to the support is stochastically increasing in y and c(·)
        # is non-decreasing. In float32 Σ p_i c_i is exact to ≈ (m + 2) ulps of max |c|
        # (Σ p_i is 1 only to that), which can reorder nearly equal means.
        slack = _sum_rounding(loss) * max(abs(loss.v_min), abs(loss.v_max))
        assert np.all(np.diff(means) >= -slack)

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(min_ratio=0.1, max_ratio=5.0))
    def test_reflection_reverses_the_histogram(self, data, loss):
        reach = 5 * loss.sigma
        targets = _targets(data.draw, loss, low=loss.v_min - reach, high=loss.v_max + reach)
        mirrored = (loss.v_min + loss.v_max) - targets.astype(np.float64)
        fn = self.variant(loss.target_probs)
        probs = fn(jnp.asarray(targets))
        flipped = fn(jnp.asarray(mirrored, jnp.float32))[..., ::-1]
        # float32 edges and targets are symmetric only to ≈ eps·max|v|, which moves the
        # standardised edges by that over σ (density ≤ 0.4 per unit of z).
        scale = max(abs(loss.v_min), abs(loss.v_max)) + reach
        tol = 2e-6 + 8 * EPS32 * scale / loss.sigma
        chex.assert_trees_all_close(flipped, probs, atol=tol, rtol=0)

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss(min_ratio=1e-4, max_ratio=1e-3))
    def test_small_sigma_is_one_hot_on_the_containing_bin(self, data, loss):
        # At least 5% of a bin (≥ 50σ) from the nearest edge: the other bins get < Φ(-50).
        index = data.draw(st.integers(0, loss.num_bins - 1), label="bin")
        fraction = data.draw(st.floats(0.05, 0.95), label="fraction")
        target = loss.v_min + (index + fraction) * loss.bin_width
        probs = self.variant(loss.target_probs)(jnp.asarray([target], jnp.float32))
        expected = np.eye(loss.num_bins, dtype=np.float32)[index]
        np.testing.assert_allclose(probs[0], expected, atol=1e-6)

    @jit_and_eager
    @examples
    @given(data=st.data(), loss=hl_gauss())
    def test_gradient_is_softmax_minus_target(self, data, loss):
        targets = _targets(data.draw, loss, low=loss.v_min - 10, high=loss.v_max + 10)
        logits = data.draw(
            hnp.arrays(np.float32, (NUM_TARGETS, loss.num_bins), elements=st.floats(-30, 30))
        )
        out = self.variant(lambda t, x: _hist_and_loss(loss, t, x))(
            jnp.asarray(targets), jnp.asarray(logits)
        )
        probs, grad = out["probs"], out["grad"]
        expected = jax.nn.softmax(jnp.asarray(logits), axis=-1) - probs
        chex.assert_trees_all_close(grad, expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(jnp.sum(grad, axis=-1), 0.0, atol=2 * _sum_rounding(loss))


def test_hl_gauss_conventions():
    loss = HLGauss(-10, 10, 51)  # the Atari setting
    np.testing.assert_allclose(loss.edges, np.linspace(-10, 10, 52), atol=1e-6)
    np.testing.assert_allclose(loss.centres, -10 + (np.arange(51) + 0.5) * 20 / 51, atol=1e-6)
    assert math.isclose(loss.sigma, 0.75 * 20 / 51)
    assert loss.num_outputs == 51 and loss.centres.shape == (51,)
    # The paper listing's failure: 6σ below the support, erf saturates and Z = 0 there.
    probs = loss.target_probs(jnp.asarray([-10 - 6 * loss.sigma, -1e30, 1e30]))
    chex.assert_tree_all_finite(probs)
    np.testing.assert_allclose(probs[1], np.eye(51)[0], atol=1e-30)
    np.testing.assert_allclose(probs[2], np.eye(51)[-1], atol=1e-30)
    # The widest σ allowed, 10 bins, spreads the target over the whole support.
    wide = HLGauss(0, 1, 5, sigma_ratio=10.0)
    probs = wide.target_probs(jnp.asarray([0.3]))
    np.testing.assert_allclose(probs[0], 0.2, atol=0.02)
    np.testing.assert_allclose(probs, _reference_probs(wide, np.asarray([0.3])), atol=1e-6)


def test_no_nan_from_a_bin_without_target_mass_whose_log_probability_is_minus_inf():
    # The first bin has all the target's mass; the last one's logit is so far below that
    # its log-probability is -inf (0 · -inf is NaN, but such a bin adds nothing).
    loss = TwoHot(0, 1, 3)
    logits, target = jnp.asarray([[3e38, 0.0, -3e38]]), jnp.zeros(1)
    value, grad = jax.value_and_grad(lambda x: loss.loss(x, target).sum())(logits)
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("ratio", [0.75, 10.0])
@pytest.mark.parametrize("num_bins", [2, 51])
def test_far_targets_keep_float64_accuracy_up_to_the_widest_sigma(ratio, num_bins):
    # Targets out to 1.2 clip margins (110 r² bins) on both sides: the edges' differences
    # must survive next to targets that far away.
    loss = HLGauss(-3.0, 5.0, num_bins, sigma_ratio=ratio)
    margin = 110 * loss.sigma**2 / loss.bin_width
    out = np.linspace(0, 1.2, 25) * margin
    targets = np.concatenate([5.0 + out, -3.0 - out, np.linspace(-3, 5, 9)]).astype(np.float32)
    probs = np.asarray(loss.target_probs(jnp.asarray(targets)))
    np.testing.assert_allclose(probs, _reference_probs(loss, targets), atol=1e-5)


class TestTwoHot(chex.TestCase):
    @jit_and_eager
    @examples
    @given(data=st.data(), loss=two_hot())
    def test_exact_mean_and_no_lost_mass(self, data, loss):
        span = loss.v_max - loss.v_min
        targets = _targets(data.draw, loss, low=loss.v_min - span, high=loss.v_max + span)
        targets[-2:] = (-3e38, 3e38)  # clipped from anywhere
        probs = np.asarray(self.variant(loss.target_probs)(jnp.asarray(targets)))
        atoms = np.asarray(loss.atoms, np.float64)
        clipped = np.clip(targets.astype(np.float64), atoms[0], atoms[-1])
        assert np.all(probs >= 0)
        # (1 - w) + w: one rounding, wherever the target falls (atoms and clips included).
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=2 * EPS32)
        # The mean is clip(t), up to float32 rounding of z_i + w (z_{i+1} - z_i) (XLA on CPU
        # also flushes subnormal targets to 0).
        tol = 4 * EPS32 * np.max(np.abs(atoms)) + float(np.finfo(np.float32).tiny)
        mean = probs.astype(np.float64) @ atoms
        np.testing.assert_allclose(mean, clipped, atol=tol)
        # Mass on at most two neighbouring atoms, bracketing the target.
        for row, t in zip(probs, clipped, strict=True):
            (hot,) = np.nonzero(row)
            assert len(hot) in (1, 2) and hot[-1] - hot[0] <= 1
            assert atoms[hot[0]] - tol <= t <= atoms[hot[-1]] + tol

    @jit_and_eager
    @examples
    @given(loss=two_hot())
    def test_atoms_are_one_hot(self, loss):
        probs = self.variant(loss.target_probs)(loss.atoms)
        np.testing.assert_allclose(probs, np.eye(loss.num_bins), atol=2 * EPS32)


def test_two_hot_conventions():
    loss = TwoHot(-1, 1, 5)
    np.testing.assert_allclose(loss.atoms, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(
        loss.target_probs(jnp.asarray([0.2, -7.0, 1.0])),
        [[0, 0, 0.6, 0.4, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1]],
        atol=1e-6,
    )
    grad = jax.grad(lambda x: jnp.sum(loss.loss(x, jnp.asarray([0.2]))))(jnp.zeros((1, 5)))
    np.testing.assert_allclose(grad[0], 0.2 - np.asarray([0, 0, 0.6, 0.4, 0]), atol=1e-6)


def test_mse():
    loss = MSE()
    logits = jnp.asarray([[1.0], [-2.0], [0.5]])
    target = jnp.asarray([0.0, 1.0, 0.5])
    assert loss.num_outputs == 1
    np.testing.assert_allclose(loss.value(logits), [1.0, -2.0, 0.5])
    np.testing.assert_allclose(loss.loss(logits, target), [0.5, 4.5, 0.0])
    grad = jax.grad(lambda x: jnp.sum(loss.loss(x, target)))(logits)
    np.testing.assert_allclose(grad[:, 0], logits[:, 0] - target)  # the ½ makes it the error
    target_grad = jax.grad(lambda t: jnp.sum(loss.loss(logits, t)))(target)
    np.testing.assert_allclose(target_grad, 0.0)  # the target is a constant


FAMILY = [HLGauss(-5, 5, 11), HLGauss(0, 1, 2, sigma_ratio=3.0), TwoHot(-5, 5, 11), MSE()]


@eqx.filter_jit
def _family_outputs(loss: AbstractValueLoss, logits, target):
    low = logits.astype(jnp.bfloat16), target.astype(jnp.bfloat16)
    flat = logits.reshape(-1, loss.num_outputs), target.reshape(-1)
    return {
        "value": loss.value(logits),
        "loss": loss.loss(logits, target),
        "flat_loss": loss.loss(*flat),
        "low_value": loss.value(low[0]),
        "low_loss": loss.loss(*low),
    }


@pytest.mark.parametrize("loss", FAMILY, ids=lambda loss: type(loss).__name__)
@pytest.mark.parametrize("batch", [(), (2, 4)])
def test_family_interface(loss: AbstractValueLoss, batch, getkey):
    logits = jax.random.normal(getkey(), (*batch, loss.num_outputs)) * 5
    target = jax.random.uniform(getkey(), batch, minval=-6, maxval=6)
    out = _family_outputs(loss, logits, target)  # the loss module passes through jit
    chex.assert_shape((out["value"], out["loss"]), batch)
    chex.assert_tree_all_finite(out)
    # Losses are per element: the mean is the caller's choice and equals the batch average.
    np.testing.assert_allclose(out["loss"].reshape(-1), out["flat_loss"], rtol=1e-6)
    # Hyper-parameters are static: a loss has no array leaves for an optimiser to update.
    assert jax.tree.leaves(loss) == []
    # bfloat16 outputs are cast up: the loss math stays in float32.
    assert out["low_value"].dtype == jnp.float32 and out["low_loss"].dtype == jnp.float32


@pytest.mark.parametrize("loss", FAMILY[:3], ids=lambda loss: type(loss).__name__)
def test_minimiser_reads_back_the_histogram_mean(loss: HLGauss | TwoHot):
    # The cross-entropy is minimised by logits = log p, where the value is the histogram's
    # mean: clip(target) for Two-Hot; for HL-Gauss the target only well inside the support.
    target = jnp.asarray([-7.0, -4.3, -1.0, 0.0, 0.37, 2.9, 9.0])
    probs = loss.target_probs(target)
    logits = jnp.log(jnp.maximum(probs, 1e-30))
    grad = jax.grad(lambda x: jnp.sum(loss.loss(x, target)))(logits)
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)
    np.testing.assert_allclose(loss.value(logits), probs @ loss.support, atol=1e-5)
    if isinstance(loss, TwoHot):
        np.testing.assert_allclose(loss.value(logits), jnp.clip(target, -5, 5), atol=1e-5)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: HLGauss(0, 1, 10, sigma_ratio=0.0), "sigma_ratio"),
        (lambda: HLGauss(0, 1, 10, sigma_ratio=-1.0), "sigma_ratio"),
        (lambda: HLGauss(0, 1, 10, sigma_ratio=math.inf), "sigma_ratio"),
        (lambda: HLGauss(0, 1, 1), "num_bins"),
        (lambda: TwoHot(0, 1, 1), "num_bins"),
        (lambda: HLGauss(1, 1, 10), "v_min"),
        (lambda: TwoHot(2, 1, 10), "v_min"),
        (lambda: HLGauss(-math.inf, 1, 10), "finite"),
        (lambda: TwoHot(0, math.nan, 10), "finite"),
        # Every float setting is checked for finiteness, and for the float32 range its
        # constants are built in (a NaN histogram otherwise).
        (lambda: HLGauss(0, 1, 10, sigma_ratio=math.nan), "sigma_ratio must be finite.*nan"),
        (lambda: HLGauss(0, math.inf, 10), "finite.*v_max=inf"),
        (lambda: TwoHot(math.nan, 1, 10), "finite.*v_min=nan"),
        (lambda: TwoHot(-math.inf, 1, 10), "finite.*v_min=-inf"),
        (lambda: TwoHot(0, 1e39, 10), r"fit in float32.*v_max=1e\+39"),
        (lambda: HLGauss(-1e308, 1e308, 10), r"fit in float32.*v_min=-1e\+308"),
        (lambda: TwoHot(1.0, 1.0 + 1e-12, 3), "too close for 3 bins"),
        (lambda: HLGauss(1.0, 1.0 + 1e-12, 3), "too close for 3 bins"),
        (lambda: HLGauss(0, 1, 10, sigma_ratio=1e-320), r"sigma_ratio must be .*\[1e-06, 10\]"),
        (lambda: HLGauss(0, 1, 10, sigma_ratio=1e300), r"sigma_ratio .*got 1e\+300"),
        # Where float32 no longer holds far targets' histograms, or the Gaussian in a bin.
        (lambda: HLGauss(0, 1, 10, sigma_ratio=11.0), r"sigma_ratio .*got 11.0"),
        (lambda: HLGauss(0, 1, 10, sigma_ratio=1e-7), r"sigma_ratio .*got 1e-07"),
        # Supports whose targets minus support points overflow float32, or whose spacing
        # XLA flushes to zero: NaN or silently wrong histograms otherwise.
        (lambda: TwoHot(-2e38, 2e38, 2), "too wide for float32"),
        (lambda: HLGauss(-1e38, 1e38, 4), "too wide for float32"),
        (lambda: HLGauss(0, 1e36, 2, sigma_ratio=10.0), r"too wide.*at most 5.5e\+39 outside"),
        (lambda: TwoHot(0.0, 2e-38, 3), "too close for 3 bins"),
        (lambda: HLGauss(0.0, 4e-38, 4, sigma_ratio=2.0), "too close for 4 bins"),
    ],
)
def test_invalid_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("loss", FAMILY, ids=lambda loss: type(loss).__name__)
def test_wrong_shapes_raise(loss: AbstractValueLoss):
    wrong = jnp.zeros((3, loss.num_outputs + 1))
    right = jnp.zeros((3, loss.num_outputs))
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's TypeCheckError is a TypeError
        loss.value(wrong)
    # Without runtime type checking: a ValueError naming the dimension it expected.
    with pytest.raises(ValueError, match=r"last dimension must be num_\w+="):
        inspect.unwrap(type(loss).value).__get__(loss)(wrong)
    loss_fn = inspect.unwrap(type(loss).loss).__get__(loss)
    with pytest.raises(ValueError, match="batch shape"):
        loss_fn(right, jnp.zeros(4))
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's TypeCheckError is a TypeError
        loss.loss(right, jnp.zeros(4))


def test_guide_examples_run():
    # The code blocks of the guide page are part of the documented behaviour.
    guide = Path(__file__).parents[1] / "docs" / "guide" / "losses.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    assert blocks
    # User code runs with JAX's standard promotion (optax's Adam mixes int32 step counts
    # with floats); deepcrl's own code is held to the strict rules by the other tests.
    with jax.numpy_dtype_promotion("standard"):
        for block in blocks:
            exec(compile(block, str(guide), "exec"), {})


@pytest.mark.parametrize("loss", FAMILY, ids=lambda loss: type(loss).__name__)
def test_integer_targets_are_cast_to_float32(loss: AbstractValueLoss):
    target = jnp.asarray([-7, 0, 1, 3], dtype=jnp.int32)
    logits = jnp.linspace(-1, 1, 4 * loss.num_outputs).reshape(4, loss.num_outputs)
    out = loss.loss(logits, target)
    assert out.dtype == jnp.float32
    chex.assert_trees_all_close(out, loss.loss(logits, target.astype(jnp.float32)))


def test_upcast_makes_float32_and_refuses_complex_numbers():
    # Every loss takes its inputs through it: integers, booleans and half floats become
    # float32 (the losses' arithmetic), float32 stays, complex is refused.
    for x in (jnp.arange(3), jnp.ones(2, bool), jnp.ones(2, jnp.bfloat16), jnp.ones(2)):
        assert upcast(x).dtype == jnp.float32
    with pytest.raises(ValueError, match="Expected real numbers, got an array of dtype complex64"):
        upcast(jnp.ones(2, jnp.complex64))


@pytest.mark.usefixtures("without_type_checks")
def test_numpy_integer_bins_are_plain_ints():
    for loss in (HLGauss(0, 1, np.int64(5)), TwoHot(0, 1, np.int64(5))):
        assert type(loss.num_bins) is int and loss.support.shape == (5,)
