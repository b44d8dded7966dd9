import dataclasses
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._checks import check_int
from ..losses import MSE, AbstractValueLoss, HLGauss, TwoHot
from ..nn import QEnsemble, TanhGaussianActor
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

ValueLossName = Literal["hl_gauss", "two_hot", "mse"]


@dataclasses.dataclass(frozen=True)
class TDConfig(ActorCriticConfig):
    """Hyper-parameters of the goal-conditioned TD learner (SAC defaults where they apply).

    The reward is 1 on the step that reaches the goal. With `terminal_at_goal` (default)
    that step ends the return, so `Q(s, a, g) = E[γ^(T−1)]` for `T` the steps to the goal:
    values lie in [0, 1] whatever γ, and order states by their distance to the goal as a
    contrastive critic does. Without it the agent keeps collecting reward while it stays
    at the goal and values lie in [0, 1/(1 − γ)].
    """

    value_loss: ValueLossName = "hl_gauss"
    """How the critic learns its TD targets: HL-Gauss or Two-Hot classification, or MSE."""
    num_bins: int = 51
    """Bins (HL-Gauss) or atoms (Two-Hot) over the support."""
    sigma_ratio: float = 0.75
    """HL-Gauss σ as a multiple of the bin width."""
    discount: float = 0.99
    """γ of the TD targets."""
    terminal_at_goal: bool = True
    """Whether reaching the goal ends the return (see above)."""
    v_min: float | None = None
    """Lower end of the critic's support; `None`: the smallest return (0)."""
    v_max: float | None = None
    """Upper end of the support; `None`: the largest return (1, or 1/(1 − γ) without
    `terminal_at_goal`)."""
    soft_target: bool = False
    """Subtract `α log π(a'|s', g)` from the bootstrapped value (SAC's soft backup), before
    the target becomes a histogram. Off by default: with rewards in {0, 1} the per-step
    entropy bonus is as large as the whole return, and soft targets overflow the bounded
    support (the entropy still shapes the actor through its own loss)."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    initial_alpha: float = 0.05
    """The entropy temperature α at the start. Smaller than CRL's 1: TD values lie in
    [0, 1], so α = 1 would make the actor ignore the critic until α has decayed."""
    num_critics: int = 2
    """Critics in the ensemble; targets and the actor use their minimum."""

    def __post_init__(self):
        super().__post_init__()
        check_choice("value_loss", self.value_loss, ("hl_gauss", "two_hot", "mse"))
        check_int("num_bins", self.num_bins, minimum=2)
        check_float("sigma_ratio", self.sigma_ratio, low=0.0, low_open=True)
        check_float("discount", self.discount, low=0.0, high=1.0, low_open=True, high_open=True)
        check_float("tau", self.tau, low=0.0, high=1.0, low_open=True)
        check_int("num_critics", self.num_critics, minimum=1)
        for name in ("v_min", "v_max"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name))
        low, high = self.support
        if not low < high:
            raise ValueError(f"The support needs v_min < v_max, got [{low}, {high}].")
        r_low, r_high = self.returns
        if low > r_low or high < r_high:
            raise ValueError(
                f"The support [{low}, {high}] cannot hold the returns [{r_low}, {r_high:g}] of a "
                f"reward in {{0, 1}} with discount={self.discount}"
                + ("" if self.terminal_at_goal else " and no termination at the goal")
                + "; widen v_min/v_max or leave them unset."
            )
        self.make_value_loss()  # the loss's own checks (float32 range, σ), before any run

    @property
    def returns(self) -> tuple[float, float]:
        """The smallest and largest discounted return."""
        return 0.0, 1.0 if self.terminal_at_goal else 1.0 / (1.0 - self.discount)

    @property
    def support(self) -> tuple[float, float]:
        """`(v_min, v_max)` of the critic (the returns' range unless overridden)."""
        low, high = self.returns
        return (
            low if self.v_min is None else self.v_min,
            high if self.v_max is None else self.v_max,
        )

    def make_value_loss(self) -> AbstractValueLoss:
        v_min, v_max = self.support
        if self.value_loss == "hl_gauss":
            return HLGauss(v_min, v_max, self.num_bins, sigma_ratio=self.sigma_ratio)
        if self.value_loss == "two_hot":
            return TwoHot(v_min, v_max, self.num_bins)
        return MSE()


class TDState(AbstractActorCriticState):
    """Everything the TD learner learns: actor, critics, target critics, temperature."""

    actor: TanhGaussianActor
    critic: QEnsemble
    target_critic: QEnsemble
    eval_actor: TanhGaussianActor
    log_alpha: Float[Array, ""]
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState
    updates: Int[Array, ""]


def td_target(
    loss: AbstractValueLoss,
    config: TDConfig,
    target_critic: QEnsemble,
    actor: TanhGaussianActor,
    alpha: Float[Array, ""],
    batch: Batch,
    key: PRNGKeyArray,
) -> tuple[Float[Array, " batch"], Float[Array, " batch"], Float[Array, " batch"]]:
    """`y = r + γ (1 − done) (min_k Q'_k(s', a', g) − α log π(a'|s', g))`, `a' ~ π(s', g)`,
    clipped into the support. `done = r` when the goal is terminal, else 0.

    **Returns:** the clipped target, whether each entry was clipped, and the bootstrapped
    value `min_k Q'_k` (for metrics).
    """
    next_action, next_log_prob = actor.sample(batch.next_obs, batch.goal, key=key)
    next_q = jnp.min(loss.value(target_critic(batch.next_obs, next_action, batch.goal)), axis=0)
    soft = next_q - alpha * next_log_prob if config.soft_target else next_q
    continues = 1.0 - batch.reward if config.terminal_at_goal else jnp.ones_like(batch.reward)
    target = batch.reward + config.discount * continues * soft
    v_min, v_max = config.support
    clipped = (target < v_min) | (target > v_max)
    return jnp.clip(target, v_min, v_max), clipped.astype(jnp.float32), next_q


def critic_loss(
    critic: QEnsemble, loss: AbstractValueLoss, batch: Batch, target: Float[Array, " batch"]
) -> tuple[Float[Array, ""], Float[Array, "critics batch"]]:
    """The value loss of every critic against the (constant) target, averaged.

    **Returns:** the loss and the critics' values of the batch's actions.
    """
    logits = critic(batch.obs, batch.action, batch.goal)
    target = jnp.broadcast_to(jax.lax.stop_gradient(target), logits.shape[:-1])
    return jnp.mean(loss.loss(logits, target)), loss.value(logits)


def actor_loss(
    actor: TanhGaussianActor,
    critic: QEnsemble,
    loss: AbstractValueLoss,
    alpha: Float[Array, ""],
    batch: Batch,
    key: PRNGKeyArray,
) -> tuple[Float[Array, ""], Float[Array, " batch"]]:
    """`mean(α log π(a|s,g) − min_k Q_k(s, a, g))` with a reparameterised action."""
    action, log_prob = actor.sample(batch.obs, batch.goal, key=key)
    q = jnp.min(loss.value(critic(batch.obs, action, batch.goal)), axis=0)
    return jnp.mean(alpha * log_prob - q), log_prob


class TD(AbstractActorCritic[TDConfig]):
    """A goal-conditioned soft actor-critic whose critics learn TD targets as a
    classification problem (HL-Gauss by default; Two-Hot, or MSE regression).

    Twin critics `Q_k(s, a, g)` on [`ResidualMLP`][deepcrl.nn.ResidualMLP]s output
    `loss.num_outputs` logits each; Polyak-averaged target critics give the bootstrapped
    value; a tanh-Gaussian actor maximises the critics' minimum with an auto-tuned entropy
    temperature. Rewards come from the batch: 1 when the next step reaches the relabelled
    goal (see [`TDConfig`][deepcrl.td.TDConfig] for the return's scale).
    """

    config: TDConfig = eqx.field(static=True)
    total_updates: int | None = eqx.field(static=True, default=None)
    """SGD steps of the whole run (for `lr_schedule="cosine"`), set by `with_total_updates`."""

    @property
    def value_loss(self) -> AbstractValueLoss:
        return self.config.make_value_loss()

    def init(
        self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int
    ) -> TDState:
        """Fresh actor and critics (targets equal to the critics), α = `initial_alpha`."""
        c = self.config
        actor_key, critic_key = jr.split(key)
        actor = self.make_actor(
            actor_key, obs_size=obs_size, goal_size=goal_size, action_size=action_size
        )
        critic = QEnsemble(
            obs_size,
            action_size,
            goal_size,
            self.value_loss.num_outputs,
            num_critics=c.num_critics,
            width=c.critic_width,
            depth=c.critic_depth,
            **network_options(c),
            key=critic_key,
        )
        log_alpha = jnp.log(jnp.asarray(c.initial_alpha, jnp.float32))
        actor_optim, critic_optim, alpha_optim = self.optimisers()
        return TDState(
            actor=actor,
            critic=critic,
            target_critic=critic,
            eval_actor=actor,
            log_alpha=log_alpha,
            actor_opt=actor_optim.init(eqx.filter(actor, eqx.is_inexact_array)),
            critic_opt=critic_optim.init(eqx.filter(critic, eqx.is_inexact_array)),
            alpha_opt=alpha_optim.init(log_alpha),
            updates=jnp.zeros((), jnp.int32),
        )

    def update(
        self, state: TDState, batch: Batch, key: PRNGKeyArray
    ) -> tuple[TDState, dict[str, Array]]:
        """One SGD step: critics on their TD targets, then the actor and α on the new
        critics, then the target critics."""
        c = self.config
        loss = self.value_loss
        actor_optim, critic_optim, alpha_optim = self.optimisers()
        target_key, actor_key = jr.split(key)
        alpha = jnp.exp(state.log_alpha)

        target, clipped, next_q = td_target(
            loss, c, state.target_critic, state.actor, alpha, batch, target_key
        )
        (c_loss, q), critic_grads = eqx.filter_value_and_grad(critic_loss, has_aux=True)(
            state.critic, loss, batch, target
        )
        critic, critic_opt = apply_updates(
            critic_optim, critic_grads, state.critic_opt, state.critic
        )

        (a_loss, log_prob), actor_grads = eqx.filter_value_and_grad(actor_loss, has_aux=True)(
            state.actor, critic, loss, alpha, batch, actor_key
        )
        actor, actor_opt = apply_updates(actor_optim, actor_grads, state.actor_opt, state.actor)

        target_entropy = self.target_entropy(state.actor.action_size)
        t_loss, alpha_grad = jax.value_and_grad(alpha_loss)(
            state.log_alpha, log_prob, target_entropy
        )
        log_alpha, alpha_opt = apply_updates(
            alpha_optim, alpha_grad, state.alpha_opt, state.log_alpha
        )
        new_state = TDState(
            actor=actor,
            critic=critic,
            target_critic=running_average(state.target_critic, critic, 1.0 - c.tau),
            eval_actor=running_average(state.eval_actor, actor, c.eval_actor_decay),
            log_alpha=jnp.asarray(log_alpha),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
            updates=state.updates + 1,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha_loss": t_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(log_prob),
            "q_mean": jnp.mean(q),
            "q_min": jnp.min(q),
            "q_max": jnp.max(q),
            "target_q": jnp.mean(target),
            "next_q": jnp.mean(next_q),
            "target_clipped": jnp.mean(clipped),
            "reward": jnp.mean(batch.reward),
            "critic_grad_norm": optax.tree.norm(critic_grads),
            "actor_grad_norm": optax.tree.norm(actor_grads),
            "lr_scale": self.lr_scale(state.updates),
        }
        return new_state, metrics

    def value(
        self,
        state: TDState,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        """The critics' minimum `min_k Q_k(s, a, g)`."""
        return jnp.min(self.value_loss.value(state.critic(obs, action, goal)), axis=0)
