"""What the actor-critic learners share: settings, optimisers, the temperature, averaging,
and the actor's part of the learner interface."""

import dataclasses
import math
from typing import Any, Generic, Literal, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._checks import check_int
from ..nn import TanhGaussianActor
from ._learner import AbstractLearner

LRSchedule = Literal["constant", "cosine"]
ActivationName = Literal["swish", "relu"]
ACTIVATIONS = {"swish": jax.nn.swish, "relu": jax.nn.relu}
"""The activations a configuration can name (the depth work's swish, and ReLU to ablate it)."""


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
    """The entropy temperature α at the start (then tuned towards the target entropy), in
    [1e-10, 1e10]: float32's log α and its first updates stay finite there."""
    activation: ActivationName = "swish"
    """Activation of every layer of actor and critic: swish, or relu (an ablation)."""
    layer_norm: bool = True
    """LayerNorm after every linear layer of actor and critic (False: an ablation)."""
    remat: bool = False
    """Recompute block activations in the backward pass (for extreme depth)."""
    actor_head_norm: bool = False
    """A LayerNorm before the actor's heads, so that their input keeps its scale at any depth
    (see [`TanhGaussianActor`][deepcrl.nn.TanhGaussianActor])."""
    eval_actor_decay: float = 0.0
    """Evaluation uses a running average of the actor's weights, updated after every SGD step
    as `decay · average + (1 − decay) · actor` (0: the actor itself)."""
    eval_candidates: int = 1
    """Evaluation actions: 1 takes the evaluation actor's `tanh(mean)`; K > 1 scores K
    candidates with the critic and takes the best: `tanh(mean)` and `tanh(mean + std · z_k)`
    for K − 1 fixed standard-normal offsets `z_k` per batch row (deterministic, no key needed;
    a state's action depends on its row in the batch)."""

    def __post_init__(self):
        for name in ("actor_depth", "critic_depth"):
            depth = getattr(self, name)
            if not isinstance(depth, int) or depth < 4 or depth % 4:
                raise ValueError(f"{name} must be a positive multiple of 4, got {depth}.")
        for name in ("actor_width", "critic_width"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            check_float(name, getattr(self, name), low=0.0, low_open=True)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        for name in ("layer_norm", "actor_head_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        check_choice("lr_schedule", self.lr_schedule, ("constant", "cosine"))
        if self.lr_decay_updates is not None:
            check_int("lr_decay_updates", self.lr_decay_updates, minimum=1)
        check_float("lr_final_scale", self.lr_final_scale, low=0.0, high=1.0)
        check_float("target_entropy_scale", self.target_entropy_scale)
        # log α is float32: 1e-50 would be −inf for good, 1e39 +inf, NaN after one update.
        check_float("initial_alpha", self.initial_alpha, low=1e-10, high=1e10)
        check_float("eval_actor_decay", self.eval_actor_decay, low=0.0, high=1.0, high_open=True)
        check_int("eval_candidates", self.eval_candidates, minimum=1)


def network_options(config: ActorCriticConfig) -> dict[str, Any]:
    """The configuration's options of every residual network (activation, norm, remat)."""
    return dict(
        activation=ACTIVATIONS[config.activation],
        layer_norm=config.layer_norm,
        remat=config.remat,
    )


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """A `ValueError` naming `name` unless `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


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


ConfigT = TypeVar("ConfigT", bound=ActorCriticConfig)
_ADDED_SETTINGS = {"activation": "swish", "layer_norm": True, "actor_head_norm": False}


class AbstractActorCriticState(eqx.Module):
    """What every actor-critic state holds: the actor that explores and its running
    average that evaluation uses (see `eval_actor_decay`)."""

    actor: eqx.AbstractVar[TanhGaussianActor]
    eval_actor: eqx.AbstractVar[TanhGaussianActor]


class AbstractActorCritic(AbstractLearner, Generic[ConfigT]):
    """A learner with a tanh-Gaussian actor, an auto-tuned entropy temperature and Adam
    optimisers whose rates may follow a cosine schedule over the whole run.

    Subclasses ([`CRL`][deepcrl.crl.CRL], [`TD`][deepcrl.td.TD]) bring the critic, `init`,
    `update` and `value`; exploration, evaluation actions, the schedule and `describe` are
    here, written once.
    """

    config: eqx.AbstractVar[ConfigT]
    total_updates: eqx.AbstractVar[int | None]
    """SGD steps of the whole run (for `lr_schedule="cosine"`), set by `with_total_updates`."""

    def __check_init__(self):
        if self.total_updates is not None:  # refuses a decay that stops learning early
            decay_updates(self.config, self.total_updates)

    def with_total_updates(self, total_updates: int) -> "AbstractActorCritic[ConfigT]":
        decay_updates(self.config, total_updates)  # refuses a decay that stops learning early
        if self.config.lr_schedule == "cosine" and self.config.lr_decay_updates is None:
            return dataclasses.replace(self, total_updates=total_updates)
        # The run's length changes nothing here: keep the static fields, and so the compiled
        # programs, of every run length equal.
        return self

    def describe(self) -> dict[str, Any]:
        c = self.config
        whole_run = c.lr_schedule == "cosine" and c.lr_decay_updates is None
        decay = self.total_updates if whole_run else decay_updates(c, None)
        described = super().describe() | {"lr_decay": decay}
        # Settings added after runs were first saved appear only when they differ from the
        # behaviour before them, so that those runs still resume and load.
        for name, before in _ADDED_SETTINGS.items():
            if described[name] == before:
                del described[name]
        return described

    def optimisers(self) -> tuple[optax.GradientTransformation, ...]:
        """Adam for the actor, the critic and log α (the first two on the schedule)."""
        c = self.config
        decay = decay_updates(c, self.total_updates)
        return (
            optax.adam(learning_rate(c.actor_lr, decay, c.lr_final_scale)),
            optax.adam(learning_rate(c.critic_lr, decay, c.lr_final_scale)),
            optax.adam(c.alpha_lr),
        )

    def lr_scale(self, updates: Int[Array, ""] | int) -> Float[Array, ""]:
        """The actor's and critic's learning rates after `updates` SGD steps, over their peaks."""
        decay = decay_updates(self.config, self.total_updates)
        return lr_scale(decay, self.config.lr_final_scale, updates)

    def make_actor(
        self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int
    ) -> TanhGaussianActor:
        """A fresh actor of the configured depth and width."""
        c = self.config
        return TanhGaussianActor(
            obs_size,
            goal_size,
            action_size,
            width=c.actor_width,
            depth=c.actor_depth,
            **network_options(c),
            head_norm=c.actor_head_norm,
            key=key,
        )

    def target_entropy(self, action_size: int) -> float:
        """The entropy α is tuned towards: `−target_entropy_scale × action_size`."""
        return -self.config.target_entropy_scale * action_size

    def act(
        self,
        state: AbstractActorCriticState,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        key: PRNGKeyArray,
    ) -> Float[Array, "batch action"]:
        """A sample of the tanh-Gaussian actor (exploration)."""
        action, _ = state.actor.sample(obs, goal, key=key)
        return action

    def act_eval(
        self,
        state: AbstractActorCriticState,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, "batch action"]:
        """`tanh(mean)` of the evaluation actor (the running average, see `eval_actor_decay`),
        or the best of `eval_candidates` actions around it by the critic's value."""
        k = self.config.eval_candidates
        if k == 1:
            return state.eval_actor.deterministic(obs, goal)
        mean, log_std = state.eval_actor(obs, goal)
        # Fixed offsets, the first one zero: the candidates always include tanh(mean), and
        # evaluation stays a deterministic function of the state and the batch. The offsets
        # are drawn per row, so the same (obs, goal) in another row or a batch of another
        # size may pick another candidate.
        z = jr.normal(jr.key(0), (k, *mean.shape), mean.dtype).at[0].set(0.0)
        candidates = jnp.tanh(mean[None] + jnp.exp(log_std)[None] * z)
        values = jax.vmap(lambda a: self.value(state, obs, a, goal))(candidates)
        best = jnp.argmax(values, axis=0)
        return jnp.take_along_axis(candidates, best[None, :, None], axis=0)[0]
