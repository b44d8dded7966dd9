import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._custom_types import Activation
from ._residual import ResidualMLP, _norm, check_sizes

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0
ACTION_CLIP = 1.0 - 1e-6
"""Actions are clipped into ±(1 - 1e-6) before `atanh` so log-probs of actions at ±1 are finite."""


def squash_log_std(raw: Array) -> Array:
    """Map a raw head output smoothly into `[LOG_STD_MIN, LOG_STD_MAX]`."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)


def log_tanh_jacobian(u: Array) -> Array:
    """`log(1 - tanh(u)²)`, computed as `2(log 2 - u - softplus(-2u))`: finite for any `u`."""
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def gaussian_log_prob(u: Array, mean: Array, log_std: Array) -> Array:
    """Elementwise log-density of `N(mean, exp(log_std)²)` at `u`."""
    z = (u - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.square(z) - log_std - 0.5 * math.log(2.0 * math.pi)


class TanhGaussianActor(eqx.Module):
    """A goal-conditioned tanh-Gaussian policy on a [`ResidualMLP`][deepcrl.nn.ResidualMLP].

    The trunk reads `concat(obs, goal)` and outputs a mean and a raw log-std per action
    dimension; the log-std is squashed smoothly into `[-5, 2]`. Actions are `tanh(u)` with
    `u ~ N(mean, std²)`, in `[-1, 1]`: float32's tanh rounds to ±1 once |u| passes about 9.
    `sample`'s log-probability is computed from `u` and stays exact there; `log_prob` of an
    action at ±1 evaluates it at ±(1 − 1e-6). All methods take batches.
    """

    trunk: ResidualMLP
    head_norm: eqx.nn.LayerNorm | eqx.nn.Identity
    action_size: int = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        goal_size: int,
        action_size: int,
        *,
        width: int = 256,
        depth: int = 4,
        activation: Activation = jax.nn.swish,
        layer_norm: bool = True,
        remat: bool = False,
        head_norm: bool = False,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `obs_size`, `goal_size`, `action_size`: input and action sizes.
        - `width`, `depth`, `activation`, `layer_norm`, `remat`: as in
          [`ResidualMLP`][deepcrl.nn.ResidualMLP].
        - `head_norm`: a LayerNorm between the residual stream and the heads. The stream's
          norm grows with depth (about 10 at depth 4, 48 at depth 64 for width 128), and
          so do the raw log-stds: at depth 64 a fresh actor can start with its log-std at
          the floor, where the squash has no gradient and the entropy cannot rise. The norm
          keeps the heads' input at the same scale at every depth.
        - `key`: PRNG key for the initialisation.
        """
        obs_size, goal_size, action_size = check_sizes(
            obs_size=obs_size, goal_size=goal_size, action_size=action_size
        )
        self.trunk = ResidualMLP(
            obs_size + goal_size,
            2 * action_size,
            width=width,
            depth=depth,
            activation=activation,
            layer_norm=layer_norm,
            remat=remat,
            key=key,
        )
        self.head_norm = _norm(self.trunk.width, head_norm)
        self.action_size = action_size

    def __call__(
        self, obs: Float[Array, "batch obs"], goal: Float[Array, "batch goal"]
    ) -> tuple[Float[Array, "batch action"], Float[Array, "batch action"]]:
        """The pre-tanh Gaussian's `(mean, log_std)`."""
        x = jnp.concatenate([obs, goal], axis=-1)
        out = jax.vmap(lambda v: self.trunk.head(self.head_input(v)))(x)
        mean, raw_log_std = jnp.split(out, 2, axis=-1)
        return mean, squash_log_std(raw_log_std)

    def head_input(self, x: Float[Array, " in_size"]) -> Float[Array, " width"]:
        """What the heads read for one `concat(obs, goal)`: the trunk's residual stream,
        through the head norm when there is one."""
        return self.head_norm(self.trunk.features(x))

    def sample(
        self,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        *,
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, "batch action"], Float[Array, " batch"]]:
        """A reparameterised action and its log-probability (tanh correction included)."""
        mean, log_std = self(obs, goal)
        u = mean + jnp.exp(log_std) * jr.normal(key, mean.shape, mean.dtype)
        log_prob = gaussian_log_prob(u, mean, log_std) - log_tanh_jacobian(u)
        return jnp.tanh(u), jnp.sum(log_prob, axis=-1)

    def log_prob(
        self,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        action: Float[Array, "batch action"],
    ) -> Float[Array, " batch"]:
        """Log-probability of given actions; finite for actions at ±1 (clipped by 1e-6)."""
        mean, log_std = self(obs, goal)
        # In at least float32: 1 − 1e-6 rounds to 1 in bfloat16 and float16 (arctanh: inf).
        if jnp.finfo(action.dtype).bits < 32:
            action = action.astype(jnp.float32)
        u = jnp.arctanh(jnp.clip(action, -ACTION_CLIP, ACTION_CLIP))
        log_prob = gaussian_log_prob(u, mean, log_std) - log_tanh_jacobian(u)
        return jnp.sum(log_prob, axis=-1)

    def deterministic(
        self, obs: Float[Array, "batch obs"], goal: Float[Array, "batch goal"]
    ) -> Float[Array, "batch action"]:
        """The evaluation action `tanh(mean)`."""
        mean, _ = self(obs, goal)
        return jnp.tanh(mean)
