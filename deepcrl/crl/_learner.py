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
from ..train import Batch
from ..train._actor_critic import (
    ActorCriticConfig,
    alpha_loss,
    apply_updates,
    check_float,
    check_int,
    decay_updates,
    learning_rate,
    lr_scale,
    running_average,
)
from ..train._learner import AbstractLearner


@dataclasses.dataclass(frozen=True)
class CRLConfig(ActorCriticConfig):
    """Hyper-parameters of contrastive RL (defaults follow the depth-scaling work)."""

    repr_dim: int = 64
    """Size of the embeddings φ(s, a) and ψ(g)."""
    energy: EnergyName = "l2"
    """Critic energy between φ and ψ: l2, sq_l2, dot or cosine."""
    infonce_variant: InfoNCEVariant = "forward"
    """Which InfoNCE the critic minimises."""
    logsumexp_penalty: float = 0.1
    """Coefficient of the logsumexp² regulariser on the critic's logits."""

    def __post_init__(self):
        super().__post_init__()
        check_int("repr_dim", self.repr_dim, minimum=1)
        check_float("logsumexp_penalty", self.logsumexp_penalty, low=0.0)


class CRLState(eqx.Module):
    """Everything contrastive RL learns: networks, temperature and optimiser states."""

    actor: TanhGaussianActor
    critic: ContrastiveCritic
    eval_actor: TanhGaussianActor
    """The running average of the actor that evaluation uses (see `eval_actor_decay`)."""
    log_alpha: Float[Array, ""]
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState
    updates: Int[Array, ""]


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


class CRL(AbstractLearner):
    """Contrastive RL: a critic `f(s, a, g) = energy(φ(s, a), ψ(g))` trained with InfoNCE
    over the batch (the other rows' goals are the negatives), and a tanh-Gaussian actor
    that maximises it, with an auto-tuned entropy temperature. No reward, no target network.

    ```python
    learner = CRL(CRLConfig(critic_depth=16))
    state = learner.init(key, obs_size=4, goal_size=2, action_size=2)
    state, metrics = learner.update(state, batch, key)
    ```
    """

    config: CRLConfig = eqx.field(static=True)
    total_updates: int | None = eqx.field(static=True, default=None)
    """SGD steps of the whole run (for `lr_schedule="cosine"`), set by `with_total_updates`."""

    def __check_init__(self):
        if self.total_updates is not None:  # refuses a decay that stops learning early
            decay_updates(self.config, self.total_updates)

    def with_total_updates(self, total_updates: int) -> "CRL":
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
        return super().describe() | {"lr_decay": decay}

    def _optimisers(self) -> tuple[optax.GradientTransformation, ...]:
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

    def init(
        self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int
    ) -> CRLState:
        """Fresh networks (log α = 0) and optimiser states."""
        c = self.config
        actor_key, critic_key = jr.split(key)
        actor = TanhGaussianActor(
            obs_size,
            goal_size,
            action_size,
            width=c.actor_width,
            depth=c.actor_depth,
            remat=c.remat,
            key=actor_key,
        )
        critic = ContrastiveCritic(
            obs_size,
            action_size,
            goal_size,
            repr_dim=c.repr_dim,
            width=c.critic_width,
            depth=c.critic_depth,
            energy=c.energy,
            remat=c.remat,
            key=critic_key,
        )
        log_alpha = jnp.log(jnp.asarray(c.initial_alpha, jnp.float32))
        actor_optim, critic_optim, alpha_optim = self._optimisers()
        return CRLState(
            actor=actor,
            critic=critic,
            eval_actor=actor,
            log_alpha=log_alpha,
            actor_opt=actor_optim.init(eqx.filter(actor, eqx.is_inexact_array)),
            critic_opt=critic_optim.init(eqx.filter(critic, eqx.is_inexact_array)),
            alpha_opt=alpha_optim.init(log_alpha),
            updates=jnp.zeros((), jnp.int32),
        )

    def update(
        self, state: CRLState, batch: Batch, key: PRNGKeyArray
    ) -> tuple[CRLState, dict[str, Array]]:
        """One SGD step: the actor and α first (on the current critic), then the critic."""
        actor_optim, critic_optim, alpha_optim = self._optimisers()
        target_entropy = -self.config.target_entropy_scale * state.actor.action_size
        alpha = jnp.exp(state.log_alpha)

        (a_loss, log_prob), actor_grads = eqx.filter_value_and_grad(actor_loss, has_aux=True)(
            state.actor, state.critic, alpha, batch, key
        )
        actor, actor_opt = apply_updates(actor_optim, actor_grads, state.actor_opt, state.actor)

        t_loss, alpha_grad = jax.value_and_grad(alpha_loss)(
            state.log_alpha, log_prob, target_entropy
        )
        log_alpha, alpha_opt = apply_updates(
            alpha_optim, alpha_grad, state.alpha_opt, state.log_alpha
        )

        (c_loss, metrics), critic_grads = eqx.filter_value_and_grad(critic_loss, has_aux=True)(
            state.critic, batch, self.config
        )
        critic, critic_opt = apply_updates(
            critic_optim, critic_grads, state.critic_opt, state.critic
        )
        new_state = CRLState(
            actor=actor,
            critic=critic,
            eval_actor=running_average(state.eval_actor, actor, self.config.eval_actor_decay),
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
            lr_scale=self.lr_scale(state.updates),
        )
        return new_state, metrics

    def act(
        self,
        state: CRLState,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        key: PRNGKeyArray,
    ) -> Float[Array, "batch action"]:
        """A sample of the tanh-Gaussian actor (exploration)."""
        action, _ = state.actor.sample(obs, goal, key=key)
        return action

    def act_eval(
        self, state: CRLState, obs: Float[Array, "batch obs"], goal: Float[Array, "batch goal"]
    ) -> Float[Array, "batch action"]:
        """`tanh(mean)` of the evaluation actor (the running average, see `eval_actor_decay`)."""
        return state.eval_actor.deterministic(obs, goal)

    def value(
        self,
        state: CRLState,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        """The critic's energy `f(s, a, g)`."""
        return state.critic(obs, action, goal)
