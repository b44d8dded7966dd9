import dataclasses
from typing import get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._checks import check_int
from ..losses import InfoNCEVariant, contrastive_metrics, infonce
from ..nn import ENERGIES, ContrastiveCritic, EnergyName, TanhGaussianActor
from ..train import Batch
from ..train._actor_critic import (
    AbstractActorCritic,
    AbstractActorCriticState,
    ActorCriticConfig,
    alpha_loss,
    apply_updates,
    check_choice,
    check_float,
    network_options,
    running_average,
)


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
        # Checked here, not first when `update` is traced inside a run that already wrote
        # its files.
        check_choice("energy", self.energy, tuple(ENERGIES))
        check_choice("infonce_variant", self.infonce_variant, get_args(InfoNCEVariant))


class CRLState(AbstractActorCriticState):
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


class CRL(AbstractActorCritic[CRLConfig]):
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

    @property
    def goals_are_positives(self) -> bool:
        return True

    def init(
        self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int
    ) -> CRLState:
        """Fresh networks (log α = 0) and optimiser states."""
        c = self.config
        actor_key, critic_key = jr.split(key)
        actor = self.make_actor(
            actor_key, obs_size=obs_size, goal_size=goal_size, action_size=action_size
        )
        critic = ContrastiveCritic(
            obs_size,
            action_size,
            goal_size,
            repr_dim=c.repr_dim,
            width=c.critic_width,
            depth=c.critic_depth,
            energy=c.energy,
            **network_options(c),
            key=critic_key,
        )
        log_alpha = jnp.log(jnp.asarray(c.initial_alpha, jnp.float32))
        actor_optim, critic_optim, alpha_optim = self.optimisers()
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
        actor_optim, critic_optim, alpha_optim = self.optimisers()
        target_entropy = self.target_entropy(state.actor.action_size)
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

    def value(
        self,
        state: CRLState,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        """The critic's energy `f(s, a, g)`."""
        return state.critic(obs, action, goal)
