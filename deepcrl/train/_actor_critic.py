"""What the actor-critic learners share: settings, optimisers, the temperature and averaging."""

import dataclasses
import math
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

LRSchedule = Literal["constant", "cosine"]


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
    """Settings of a tanh-Gaussian actor with an entropy temperature and a critic."""

    actor_depth: int = 4
    """Linear layers inside the actor's residual blocks (a multiple of 4)."""
    actor_width: int = 256
    """Hidden width of the actor."""
    critic_depth: int = 4
    """Linear layers inside the critic's residual blocks (a multiple of 4)."""
    critic_width: int = 256
    """Hidden width of the critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature's logarithm."""
    lr_schedule: LRSchedule = "constant"
    """`cosine`: the actor's and critic's rates decay from their value to `lr_final_scale`
    times it over `lr_decay_updates` SGD steps, then stay there."""
    lr_decay_updates: int | None = None
    """Length of the cosine decay in SGD steps; `None`: the whole run."""
    lr_final_scale: float = 0.0
    """The actor's and critic's learning rates at the end of the decay, as a fraction."""
    target_entropy_scale: float = 0.5
    """Target entropy is `-target_entropy_scale × action_size`."""
    initial_alpha: float = 1.0
    """The entropy temperature α at the start (then tuned towards the target entropy)."""
    remat: bool = False
    """Recompute block activations in the backward pass (for extreme depth)."""
    eval_actor_decay: float = 0.0
    """Evaluation uses a running average of the actor's weights, updated after every SGD step
    as `decay · average + (1 − decay) · actor` (0: the actor itself)."""

    def __post_init__(self):
        for name in ("actor_depth", "critic_depth"):
            depth = getattr(self, name)
            if not isinstance(depth, int) or depth < 4 or depth % 4:
                raise ValueError(f"{name} must be a positive multiple of 4, got {depth}.")
        for name in ("actor_width", "critic_width"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            check_float(name, getattr(self, name), low=0.0, low_open=True)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}."
            )
        if self.lr_decay_updates is not None:
            check_int("lr_decay_updates", self.lr_decay_updates, minimum=1)
        check_float("lr_final_scale", self.lr_final_scale, low=0.0, high=1.0)
        check_float("target_entropy_scale", self.target_entropy_scale)
        check_float("initial_alpha", self.initial_alpha, low=0.0, low_open=True)
        check_float("eval_actor_decay", self.eval_actor_decay, low=0.0, high=1.0, high_open=True)


def check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def check_float(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A `ValueError` naming `name` unless `value` is a finite number in the given range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}.")


def decay_updates(config: ActorCriticConfig, total_updates: int | None) -> int | None:
    """The cosine decay's length in SGD steps (`None`: constant rates).

    A decay to zero that ends before the run does is refused: the rest of the run would
    collect data that no update uses.
    """
    if config.lr_schedule == "constant":
        return None
    if config.lr_decay_updates is None:
        if total_updates is None:
            raise ValueError(
                "lr_schedule='cosine' decays over the whole run, whose length is not known "
                "yet: train through deepcrl.train.run, or set lr_decay_updates."
            )
        return max(total_updates, 1)
    if (
        total_updates is not None
        and config.lr_final_scale == 0
        and config.lr_decay_updates < total_updates
    ):
        raise ValueError(
            f"The run makes {total_updates} SGD steps, but the learning rates reach 0 after "
            f"lr_decay_updates={config.lr_decay_updates}; leave lr_decay_updates unset (the "
            "whole run), or set lr_final_scale > 0."
        )
    return config.lr_decay_updates


def learning_rate(peak: float, decay: int | None, final_scale: float) -> optax.ScalarOrSchedule:
    """`peak`, or its cosine decay over `decay` SGD steps down to `final_scale × peak`.

    The step count lives in the optimiser state, so a resumed run continues the schedule.
    """
    if decay is None:
        return peak
    return optax.cosine_decay_schedule(peak, decay, alpha=final_scale)


def lr_scale(
    decay: int | None, final_scale: float, updates: Int[Array, ""] | int
) -> Float[Array, ""]:
    """The learning rates after `updates` SGD steps, over their peaks."""
    schedule = learning_rate(1.0, decay, final_scale)
    if not callable(schedule):
        return jnp.ones((), jnp.float32)
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix floats and int steps
        return jnp.asarray(schedule(updates), jnp.float32)


def apply_updates(
    optim: optax.GradientTransformation, grads: PyTree, opt_state: optax.OptState, params: PyTree
) -> tuple[PyTree, optax.OptState]:
    """One optimiser step on `params`."""
    # optax mixes Python floats with int32 step counts (bias correction): allow the standard
    # promotion rules there even when a caller runs JAX with strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optim.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state


def alpha_loss(
    log_alpha: Float[Array, ""], log_prob: Float[Array, " batch"], target_entropy: float
) -> Float[Array, ""]:
    """The SAC temperature loss: α grows while the entropy is below its target."""
    return jnp.exp(log_alpha) * jnp.mean(jax.lax.stop_gradient(-log_prob - target_entropy))


def running_average(average: PyTree, new: PyTree, decay: float) -> PyTree:
    """`decay · average + (1 − decay) · new` on every float leaf (Polyak averaging)."""
    return jax.tree.map(
        lambda avg, x: decay * avg + (1.0 - decay) * x if eqx.is_inexact_array(x) else x,
        average,
        new,
    )
