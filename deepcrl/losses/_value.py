import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr
from jaxtyping import Array, Float, Real

from .._checks import as_integer
from ._misc import upcast

# Beyond this many σ²/ς outside the support the HL-Gauss histogram is a one-hot in float32
# (the next bin's share is below e^-104 ≈ 1e-45): targets are clipped there, so no |target|
# can overflow the squares inside log Φ. See `HLGauss.target_probs`.
_CLIP_EXPONENT = 110.0
# Below this relative gap between Φ(hi) and Φ(lo) the CDF difference cancels in float32;
# the midpoint rule (with its curvature term) is then exact to O(gap²).
_NARROW_BIN = 1e-3
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# Supports and σ are used as float32 constants: a float64 setting outside float32's normal
# range would become inf or 0 there (and the histograms NaN).
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# σ as a multiple of the bin width. Above 10 the far targets' histograms lose float32
# precision (the edges' differences vanish next to targets 110 r² bins away; the tests hold
# r = 10 to 1e-5); below 1e-6 a bin is a one-hot to float32 precision anyway, and near
# 1e-19 the far bins' log-masses become NaN.
_SIGMA_RATIOS = (1e-6, 10.0)


class AbstractValueLoss(eqx.Module):
    """How a critic turns its outputs into a value and is trained towards a scalar target.

    A critic outputs `num_outputs` numbers per value (its "logits"); `value` reads the
    value back and `loss` trains them towards a target. Concrete losses:
    [`HLGauss`][deepcrl.losses.HLGauss], [`TwoHot`][deepcrl.losses.TwoHot] (classification)
    and [`MSE`][deepcrl.losses.MSE] (regression), so a critic switches between regression
    and classification with one argument.

    All losses are **per element** (shape `*batch`, no reduction: take the mean yourself)
    and computed in at least float32, whatever the dtype of the logits.
    """

    @property
    @abc.abstractmethod
    def num_outputs(self) -> int:
        """How many outputs ("logits") the critic must produce per value."""

    @abc.abstractmethod
    def value(self, logits: Float[Array, "*batch outputs"]) -> Float[Array, "*batch"]:
        """The scalar value the logits represent.

        **Arguments:**

        - `logits`: the critic's outputs, last dimension `num_outputs`.

        **Returns:** one value per batch element, in at least float32.
        """

    @abc.abstractmethod
    def loss(
        self, logits: Float[Array, "*batch outputs"], target: Real[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """The per-element loss of `logits` against a scalar `target`.

        **Arguments:**

        - `logits`: the critic's outputs, last dimension `num_outputs`.
        - `target`: one scalar target per batch element (treated as a constant).

        **Returns:** the loss per batch element (not reduced), in at least float32.
        """


class AbstractHistogramLoss(AbstractValueLoss):
    """A classification loss: a categorical distribution over a fixed `support` of values.

    The target becomes a histogram (`target_probs`), the loss is the cross-entropy
    $-\\sum_i p_i \\log \\operatorname{softmax}(\\text{logits})_i$ with the histogram held
    constant, and the value is the mean of the predicted distribution,
    $\\sum_i \\operatorname{softmax}(\\text{logits})_i\\, s_i$.
    """

    num_bins: eqx.AbstractVar[int]

    @property
    def num_outputs(self) -> int:
        return self.num_bins

    @property
    @abc.abstractmethod
    def support(self) -> Float[Array, " bins"]:
        """The value of each class (HL-Gauss: bin centres; Two-Hot: atoms)."""

    @abc.abstractmethod
    def target_probs(self, target: Real[Array, "*batch"]) -> Float[Array, "*batch bins"]:
        """The target histogram: non-negative, summing to 1 over the last axis."""

    def value(self, logits: Float[Array, "*batch bins"]) -> Float[Array, "*batch"]:
        """The mean of the predicted distribution, $\\sum_i \\operatorname{softmax}_i\\, s_i$."""
        logits = self._check_logits(logits)
        return jax.nn.softmax(logits, axis=-1) @ self.support

    def loss(
        self, logits: Float[Array, "*batch bins"], target: Real[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """Cross-entropy against `stop_gradient(target_probs(target))`, per element.

        Its gradient with respect to the logits is `softmax(logits) - target_probs(target)`.
        """
        logits = self._check_logits(logits)
        _check_batch(logits, target)
        probs = jax.lax.stop_gradient(self.target_probs(target))
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        # 0 · log 0 is 0: a bin with no target mass adds nothing, even where its logit lies
        # so far below the others that its log-probability is -inf (0 · -inf would be NaN).
        return -jnp.sum(jnp.where(probs > 0, probs * log_probs, 0.0), axis=-1)

    def _check_logits(self, logits: Array) -> Array:
        logits = upcast(logits)
        if logits.ndim == 0 or logits.shape[-1] != self.num_bins:
            raise ValueError(
                f"logits' last dimension must be num_bins={self.num_bins}, "
                f"got logits of shape {logits.shape}."
            )
        return logits


class HLGauss(AbstractHistogramLoss):
    r"""HL-Gauss: cross-entropy against a Gaussian histogram of the target.

    **Paper convention** (Farebrother et al. 2024): the support $[v_\min, v_\max]$ is cut
    into `num_bins` bins of width $\varsigma = (v_\max - v_\min)/m$ by $m + 1$ `edges`
    `linspace(v_min, v_max, m + 1)`; values are read at the bin `centres`
    $v_\min + (i + \frac12)\varsigma$. (C51-style code puts $m$ atoms *on* both ends instead,
    as [`TwoHot`][deepcrl.losses.TwoHot] does here; the same ratio then means a different σ.)

    A target $y$ becomes $Y \sim \mathcal N(y, \sigma^2)$ with
    $\sigma =$ `sigma_ratio`$\cdot\varsigma$ (0.75 by default: mass over about six bins),
    and bin $i$ gets
    $p_i = [\Phi(\frac{e_{i+1} - y}{\sigma}) - \Phi(\frac{e_i - y}{\sigma})] / Z$, with $Z$ the
    mass inside the support.
    """

    v_min: float = eqx.field(static=True)
    v_max: float = eqx.field(static=True)
    num_bins: int = eqx.field(static=True)
    sigma_ratio: float = eqx.field(static=True)

    def __init__(
        self, v_min: float | int, v_max: float | int, num_bins: int, *, sigma_ratio: float = 0.75
    ):
        """**Arguments:**

        - `v_min`, `v_max`: the support, finite, `v_min < v_max`.
        - `num_bins`: number of bins $m \\geq 2$ (the critic outputs this many logits).
        - `sigma_ratio`: σ as a multiple of the bin width, in [1e-6, 10] (where float32
            holds every histogram, see `target_probs`).
        """
        self.v_min = float(v_min)
        self.v_max = float(v_max)
        self.num_bins = as_integer("num_bins", num_bins)  # sets shapes: a plain int
        self.sigma_ratio = float(sigma_ratio)

    def __check_init__(self):
        _check_support(self.v_min, self.v_max, self.num_bins, num_points=self.num_bins + 1)
        low, high = _SIGMA_RATIOS
        if not (math.isfinite(self.sigma_ratio) and low <= self.sigma_ratio <= high):
            raise ValueError(
                f"sigma_ratio must be finite and in [{low:g}, {high:g}], got {self.sigma_ratio}."
            )
        # σ and 1/σ are float32 constants: both must be normal numbers.
        if not _FLOAT32_TINY <= self.sigma <= 1 / _FLOAT32_TINY:
            raise ValueError(
                f"sigma_ratio={self.sigma_ratio} gives sigma={self.sigma} for bins of width "
                f"{self.bin_width}: sigma and 1/sigma must be float32 normal numbers, "
                f"in [{_FLOAT32_TINY:.3g}, {1 / _FLOAT32_TINY:.3g}]."
            )
        _check_reach(self.v_min, self.v_max, self._margin)

    @property
    def _margin(self) -> float:
        """How far outside the support targets are clipped (see `target_probs`)."""
        return _CLIP_EXPONENT * self.sigma * self.sigma / self.bin_width

    @property
    def bin_width(self) -> float:
        """ς = (v_max − v_min) / num_bins."""
        return (self.v_max - self.v_min) / self.num_bins

    @property
    def sigma(self) -> float:
        """σ = sigma_ratio · ς, the standard deviation of the target's Gaussian."""
        return self.sigma_ratio * self.bin_width

    @property
    def edges(self) -> Float[Array, " edges"]:
        """The `num_bins + 1` bin edges, `linspace(v_min, v_max, num_bins + 1)`."""
        return _float32_constant(np.linspace(self.v_min, self.v_max, self.num_bins + 1))

    @property
    def centres(self) -> Float[Array, " bins"]:
        """The bin centres v_min + (i + ½)ς, where values are read."""
        return _float32_constant(self.v_min + (np.arange(self.num_bins) + 0.5) * self.bin_width)

    @property
    def support(self) -> Float[Array, " bins"]:
        return self.centres

    def target_probs(self, target: Real[Array, "*batch"]) -> Float[Array, "*batch bins"]:
        r"""The Gaussian histogram of each target, finite and exact for any finite target.

        Computed from log-CDF differences ($\log\Phi$ stays accurate where $\Phi$ rounds to
        0 or 1 in float32, which is where the textbook `erf` form returns NaN) and
        normalised in log space, so probabilities are never negative. Targets further than
        $110\,\sigma^2/\varsigma$ outside the support are clipped there: beyond that point
        the exact histogram is already a float32 one-hot on the edge bin (the next bin's
        share is below $e^{-104}$, by $\bar\Phi(x + t) \le e^{-xt - t^2/2}\bar\Phi(x)$),
        so clipping changes nothing.

        **Arguments:**

        - `target`: targets of any shape.

        **Returns:** `target.shape + (num_bins,)` probabilities, summing to 1.
        """
        target = upcast(target)
        sigma, margin = self.sigma, self._margin
        target = jnp.clip(target, self.v_min - margin, self.v_max + margin)
        edges = self.edges

        def one(y: Float[Array, ""]) -> Float[Array, " bins"]:
            # The softmax divides by Σ exp(log m − max): the result sums to 1 to a few ulps
            # (exp(log m − logsumexp) would carry logsumexp's rounding, large for far targets).
            return jax.nn.softmax(_log_gaussian_bin_masses((edges - y) / sigma))

        return jnp.vectorize(one, signature="()->(n)")(target)


def _log_gaussian_bin_masses(z: Float[Array, " edges"]) -> Float[Array, " bins"]:
    """log(Φ(z_{i+1}) − Φ(z_i)) for increasing standardised edges, accurate in float32."""
    a, b = z[:-1], z[1:]
    # Φ(b) − Φ(a) = Φ(−a) − Φ(−b): use the form whose arguments sit in the lower tail, where
    # log Φ keeps its relative accuracy (no 1 − 1 cancellation).
    flip = a + b > 0
    lo = jnp.where(flip, -b, a)
    hi = jnp.where(flip, -a, b)
    log_hi = log_ndtr(hi)
    gap = log_ndtr(lo) - log_hi  # log(Φ(lo) / Φ(hi)) < 0
    wide = gap < -_NARROW_BIN
    exact = log_hi + _log1mexp(jnp.minimum(gap, -_NARROW_BIN))
    # Narrow bins (relative to σ, or deep in a tail): midpoint rule with the curvature term,
    # ∫φ over [m − w/2, m + w/2] = w φ(m) (1 + (m² − 1) w² / 24 + O(w⁴ m⁴)).
    width = jnp.maximum(hi - lo, jnp.finfo(z.dtype).tiny)
    mid = 0.5 * (lo + hi)
    midpoint = (
        jnp.log(width)
        - 0.5 * jnp.square(mid)
        - _LOG_SQRT_2PI
        # Clamped only so the branch `where` discards stays finite (and so its gradient).
        + jnp.log1p(jnp.maximum((jnp.square(mid) - 1) * jnp.square(width) / 24, -0.5))
    )
    return jnp.where(wide, exact, midpoint)


def _log1mexp(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """log(1 − eˣ) for x < 0, accurate on both sides of −log 2."""
    return jnp.where(x > -math.log(2), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


class TwoHot(AbstractHistogramLoss):
    r"""Two-Hot (MuZero): the target's mass split linearly between its two nearest atoms.

    **C51/MuZero convention**: `num_bins` atoms *on* both ends of the support,
    `atoms = linspace(v_min, v_max, num_bins)`, spacing $\Delta = (v_\max - v_\min)/(m - 1)$
    (unlike [`HLGauss`][deepcrl.losses.HLGauss], whose `num_bins` centres sit half a bin
    inside the support). A target $t$ is clipped to $[v_\min, v_\max]$; between atoms
    $z_i \le t \le z_{i+1}$ it gives $p_i = (z_{i+1} - t)/(z_{i+1} - z_i)$ and
    $p_{i+1} = 1 - p_i$, so the histogram's mean is exactly $\operatorname{clip}(t)$ and no
    mass is lost on an atom or at a clipped target.
    """

    v_min: float = eqx.field(static=True)
    v_max: float = eqx.field(static=True)
    num_bins: int = eqx.field(static=True)

    def __init__(self, v_min: float | int, v_max: float | int, num_bins: int):
        """**Arguments:**

        - `v_min`, `v_max`: the first and last atoms, finite, `v_min < v_max`.
        - `num_bins`: number of atoms $m \\geq 2$ (the critic outputs this many logits).
        """
        self.v_min = float(v_min)
        self.v_max = float(v_max)
        self.num_bins = as_integer("num_bins", num_bins)  # sets shapes: a plain int

    def __check_init__(self):
        _check_support(self.v_min, self.v_max, self.num_bins, num_points=self.num_bins)

    @property
    def atoms(self) -> Float[Array, " bins"]:
        """The `num_bins` atoms, `linspace(v_min, v_max, num_bins)`."""
        return _float32_constant(np.linspace(self.v_min, self.v_max, self.num_bins))

    @property
    def support(self) -> Float[Array, " bins"]:
        return self.atoms

    def target_probs(self, target: Real[Array, "*batch"]) -> Float[Array, "*batch bins"]:
        """The two-hot histogram of each (clipped) target.

        **Arguments:**

        - `target`: targets of any shape.

        **Returns:** `target.shape + (num_bins,)` probabilities, summing to 1.
        """
        atoms = self.atoms
        target = jnp.clip(upcast(target), atoms[0], atoms[-1])
        # The atom at or below each target, from the atoms themselves (not from a floor of
        # (t − v_min)/Δ, which rounding can put one atom off); the last interval is closed.
        lower = jnp.clip(jnp.searchsorted(atoms, target, side="right") - 1, 0, self.num_bins - 2)
        z_lo, z_hi = atoms[lower], atoms[lower + 1]
        upper_weight = jnp.clip((target - z_lo) / (z_hi - z_lo), 0.0, 1.0)
        lower_hot = jax.nn.one_hot(lower, self.num_bins, dtype=atoms.dtype)
        upper_hot = jax.nn.one_hot(lower + 1, self.num_bins, dtype=atoms.dtype)
        return (1 - upper_weight)[..., None] * lower_hot + upper_weight[..., None] * upper_hot


class MSE(AbstractValueLoss):
    r"""Regression: the critic outputs the value itself, trained with $\frac12(v - y)^2$.

    The ½ makes the gradient with respect to the output the plain error $v - y$.
    `num_outputs` is 1: logits have a trailing axis of size 1.
    """

    @property
    def num_outputs(self) -> int:
        return 1

    def value(self, logits: Float[Array, "*batch 1"]) -> Float[Array, "*batch"]:
        """The single output."""
        return _check_single(logits)[..., 0]

    def loss(
        self, logits: Float[Array, "*batch 1"], target: Real[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """$\\frac12(v - y)^2$ per element, the target held constant."""
        logits = _check_single(logits)
        _check_batch(logits, target)
        error = logits[..., 0] - jax.lax.stop_gradient(upcast(target))
        return 0.5 * jnp.square(error)


def _float32_constant(values: np.ndarray) -> Float[Array, " n"]:
    # Built in float64 by NumPy, then rounded once: the same float32 numbers whether traced
    # under jit or not (XLA may evaluate a traced linspace differently).
    return jnp.asarray(values.astype(np.float32))


def _check_support(v_min: float, v_max: float, num_bins: int, *, num_points: int) -> None:
    """Checks a support of `num_points` evenly spaced float32 values from `v_min` to `v_max`."""
    if not (math.isfinite(v_min) and math.isfinite(v_max)):
        raise ValueError(f"v_min and v_max must be finite, got v_min={v_min}, v_max={v_max}.")
    if not v_min < v_max:
        raise ValueError(f"v_min must be < v_max, got v_min={v_min}, v_max={v_max}.")
    if num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}.")
    if max(-v_min, v_max) > _FLOAT32_MAX:
        raise ValueError(
            f"v_min and v_max must fit in float32 (|v| <= {_FLOAT32_MAX:.3g}), "
            f"got v_min={v_min}, v_max={v_max}."
        )
    _check_reach(v_min, v_max, 0.0)  # targets clipped to the support (HL-Gauss adds a margin)
    # Points that round to the same float32 give zero-width bins: division by zero (NaN).
    # Spacings below float32's normal range are as bad: XLA flushes them to zero.
    points = np.linspace(v_min, v_max, num_points).astype(np.float32)
    if not np.all(np.diff(points) >= _FLOAT32_TINY):
        raise ValueError(
            f"v_min={v_min} and v_max={v_max} are too close for {num_bins} bins: "
            "neighbouring support points coincide in float32 (or differ by less than "
            f"{_FLOAT32_TINY:.3g})."
        )


def _check_reach(v_min: float, v_max: float, margin: float) -> None:
    """Targets are clipped to [v_min − margin, v_max + margin]; every difference between such
    a target and a support point must stay finite in float32, with room to spare."""
    reach = max(-v_min, v_max) + (v_max - v_min) + margin
    if reach > _FLOAT32_MAX / 4:
        raise ValueError(
            f"v_min={v_min}, v_max={v_max} are too wide for float32: a clipped target (at "
            f"most {margin:.3g} outside) minus a support point must stay below "
            f"{_FLOAT32_MAX / 4:.3g} in magnitude, and can reach {reach:.3g}."
        )


def _check_batch(logits: Array, target: Array) -> None:
    if logits.shape[:-1] != jnp.shape(target):
        raise ValueError(
            f"target must have the logits' batch shape {logits.shape[:-1]}, "
            f"got target of shape {jnp.shape(target)}."
        )


def _check_single(logits: Array) -> Array:
    logits = upcast(logits)
    if logits.ndim == 0 or logits.shape[-1] != 1:
        raise ValueError(
            f"MSE logits' last dimension must be num_outputs=1, got logits of shape {logits.shape}."
        )
    return logits
