import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..losses import InfoNCEVariant, contrastive_metrics, infonce
from ..nn import ContrastiveCritic, EnergyName, TanhGaussianActor


@dataclasses.dataclass(frozen=True)
class CRLConfig:
    """Hyper-parameters of the contrastive RL agent (defaults follow the depth-scaling work)."""

    actor_depth: int = 4
    """Linear layers inside the actor's residual blocks (a multiple of 4)."""
    actor_width: int = 256
    """Hidden width of the actor."""
    critic_depth: int = 4
    """Linear layers inside each critic encoder's residual blocks (a multiple of 4)."""
    critic_width: int = 256
    """Hidden width of the critic encoders."""
    repr_dim: int = 64
    """Size of the embeddings φ(s, a) and ψ(g)."""
    energy: EnergyName = "l2"
    """Critic energy between φ and ψ: l2, sq_l2, dot or cosine."""
    infonce_variant: InfoNCEVariant = "forward"
    """Which InfoNCE the critic minimises."""
    logsumexp_penalty: float = 0.1
    """Coefficient of the logsumexp² regulariser on the critic's logits."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature's logarithm."""
    lr_decay_updates: int = 0
    """Over this many SGD steps the actor's and critic's learning rates follow a cosine from
    their value down to `lr_final_scale` times it, and stay there (0: constant rates)."""
    lr_final_scale: float = 0.0
    """The actor's and critic's learning rates at the end of the decay, as a fraction."""
    target_entropy_scale: float = 0.5
    """Target entropy is `-target_entropy_scale × action_size`."""
    remat: bool = False
    """Recompute block activations in the backward pass (for extreme depth)."""
    eval_actor_decay: float = 0.0
    """Evaluation uses a running average of the actor's weights, updated after every SGD step
    as `decay · average + (1 − decay) · actor` (0: the actor itself)."""

    def __post_init__(self):
        for name in ("actor_depth", "critic_depth"):
            depth = getattr(self, name)
            if depth < 4 or depth % 4:
                raise ValueError(f"{name} must be a positive multiple of 4, got {depth}.")
        for name in ("actor_width", "critic_width", "repr_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.lr_decay_updates < 0:
            raise ValueError(f"lr_decay_updates must be >= 0, got {self.lr_decay_updates}.")
        if not 0.0 <= self.lr_final_scale <= 1.0:
            raise ValueError(f"lr_final_scale must be in [0, 1], got {self.lr_final_scale}.")
        if not 0.0 <= self.eval_actor_decay < 1.0:
            raise ValueError(f"eval_actor_decay must be in [0, 1), got {self.eval_actor_decay}.")
        if self.logsumexp_penalty < 0:
            raise ValueError(f"logsumexp_penalty must be >= 0, got {self.logsumexp_penalty}.")


class Batch(eqx.Module):
    """Training pairs: states, the actions taken there, and hindsight goals from their future."""

    obs: Float[Array, "batch obs"]
    action: Float[Array, "batch action"]
    goal: Float[Array, "batch goal"]


class AgentState(eqx.Module):
    """Everything the agent learns: networks, entropy temperature and optimiser states."""

    actor: TanhGaussianActor
    critic: ContrastiveCritic
    eval_actor: TanhGaussianActor
    """The running average of the actor that evaluation uses (see `eval_actor_decay`)."""
    log_alpha: Float[Array, ""]
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState
    updates: Int[Array, ""]


def _apply(
    optim: optax.GradientTransformation, grads: Any, opt_state: optax.OptState, params: Any
) -> tuple[Any, optax.OptState]:
    # optax mixes Python floats with int32 step counts (bias correction): allow the standard
    # promotion rules there even when a caller runs JAX with strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optim.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state


def _optimisers(
    config: CRLConfig,
) -> tuple[
    optax.GradientTransformation, optax.GradientTransformation, optax.GradientTransformation
]:
    return (
        optax.adam(learning_rate(config, config.actor_lr)),
        optax.adam(learning_rate(config, config.critic_lr)),
        optax.adam(config.alpha_lr),
    )


def learning_rate(config: CRLConfig, peak: float) -> optax.ScalarOrSchedule:
    """`peak`, or its cosine decay over `config.lr_decay_updates` SGD steps.

    The step count lives in the optimiser state, so a resumed run continues the schedule.
    """
    if config.lr_decay_updates == 0:
        return peak
    return optax.cosine_decay_schedule(peak, config.lr_decay_updates, alpha=config.lr_final_scale)


def lr_scale(config: CRLConfig, updates: Int[Array, ""] | int) -> Float[Array, ""]:
    """The actor's and critic's learning rates after `updates` SGD steps, over their peaks."""
    schedule = learning_rate(config, 1.0)
    if not callable(schedule):
        return jnp.ones((), jnp.float32)
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix floats and int steps
        return jnp.asarray(schedule(updates), jnp.float32)


def init_agent(
    config: CRLConfig, *, obs_size: int, goal_size: int, action_size: int, key: PRNGKeyArray
) -> AgentState:
    """Fresh networks (log α = 0) and optimiser states.

    **Arguments:**

    - `config`: the agent's hyper-parameters.
    - `obs_size`, `goal_size`, `action_size`: sizes from the environment.
    - `key`: PRNG key for the initialisation.
    """
    actor_key, critic_key = jr.split(key)
    actor = TanhGaussianActor(
        obs_size,
        goal_size,
        action_size,
        width=config.actor_width,
        depth=config.actor_depth,
        remat=config.remat,
        key=actor_key,
    )
    critic = ContrastiveCritic(
        obs_size,
        action_size,
        goal_size,
        repr_dim=config.repr_dim,
        width=config.critic_width,
        depth=config.critic_depth,
        energy=config.energy,
        remat=config.remat,
        key=critic_key,
    )
    log_alpha = jnp.zeros((), jnp.float32)
    actor_optim, critic_optim, alpha_optim = _optimisers(config)
    return AgentState(
        actor=actor,
        critic=critic,
        eval_actor=actor,
        log_alpha=log_alpha,
        actor_opt=actor_optim.init(eqx.filter(actor, eqx.is_inexact_array)),
        critic_opt=critic_optim.init(eqx.filter(critic, eqx.is_inexact_array)),
        alpha_opt=alpha_optim.init(log_alpha),
        updates=jnp.zeros((), jnp.int32),
    )


def critic_loss(
    critic: ContrastiveCritic, batch: Batch, config: CRLConfig
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """InfoNCE over the `B × B` logits `f(s_i, a_i, g_j)` plus the logsumexp² penalty."""
    logits = critic.logits(batch.obs, batch.action, batch.goal)
    loss = infonce(
        logits, variant=config.infonce_variant, logsumexp_penalty=config.logsumexp_penalty
    )
    return loss, contrastive_metrics(logits)


def actor_loss(
    actor: TanhGaussianActor,
    critic: ContrastiveCritic,
    alpha: Float[Array, ""],
    batch: Batch,
    key: PRNGKeyArray,
) -> tuple[Float[Array, ""], Float[Array, " batch"]]:
    """`mean(α log π(a|s,g) − f(s, a, g))` with a reparameterised action at the relabelled goal.

    **Returns:** the loss and the log-probabilities (for the temperature update).
    """
    action, log_prob = actor.sample(batch.obs, batch.goal, key=key)
    q = critic(batch.obs, action, batch.goal)
    return jnp.mean(alpha * log_prob - q), log_prob


def alpha_loss(
    log_alpha: Float[Array, ""], log_prob: Float[Array, " batch"], target_entropy: float
) -> Float[Array, ""]:
    """The SAC temperature loss: α grows while the entropy is below its target."""
    return jnp.exp(log_alpha) * jnp.mean(jax.lax.stop_gradient(-log_prob - target_entropy))


def update(
    config: CRLConfig, state: AgentState, batch: Batch, key: PRNGKeyArray
) -> tuple[AgentState, dict[str, Array]]:
    """One SGD step: the actor and α first (on the current critic), then the critic.

    Pure and jittable; `config` is static.

    **Returns:** the new state and scalar metrics.
    """
    actor_optim, critic_optim, alpha_optim = _optimisers(config)
    target_entropy = -config.target_entropy_scale * state.actor.action_size
    alpha = jnp.exp(state.log_alpha)

    (a_loss, log_prob), actor_grads = eqx.filter_value_and_grad(actor_loss, has_aux=True)(
        state.actor, state.critic, alpha, batch, key
    )
    actor, actor_opt = _apply(actor_optim, actor_grads, state.actor_opt, state.actor)

    t_loss, alpha_grad = jax.value_and_grad(alpha_loss)(state.log_alpha, log_prob, target_entropy)
    log_alpha, alpha_opt = _apply(alpha_optim, alpha_grad, state.alpha_opt, state.log_alpha)

    (c_loss, metrics), critic_grads = eqx.filter_value_and_grad(critic_loss, has_aux=True)(
        state.critic, batch, config
    )
    critic, critic_opt = _apply(critic_optim, critic_grads, state.critic_opt, state.critic)

    decay = config.eval_actor_decay
    eval_actor = jax.tree.map(
        lambda avg, new: decay * avg + (1.0 - decay) * new if eqx.is_inexact_array(new) else new,
        state.eval_actor,
        actor,
    )
    new_state = AgentState(
        actor=actor,
        critic=critic,
        eval_actor=eval_actor,
        log_alpha=jnp.asarray(log_alpha),
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        alpha_opt=alpha_opt,
        updates=state.updates + 1,
    )
    metrics = dict(
        metrics,
        critic_loss=c_loss,
        actor_loss=a_loss,
        alpha_loss=t_loss,
        alpha=alpha,
        entropy=-jnp.mean(log_prob),
        critic_grad_norm=optax.tree.norm(critic_grads),
        actor_grad_norm=optax.tree.norm(actor_grads),
        lr_scale=lr_scale(config, state.updates),
    )
    return new_state, metrics
