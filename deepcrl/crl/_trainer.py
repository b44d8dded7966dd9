import dataclasses
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..envs import LAYOUTS, Maze, State
from ..replay import TrajectoryBuffer, buffer_init, buffer_insert, sample_relabelled
from ._agent import AgentState, Batch, CRLConfig, init_agent, update

StartGoal = Literal["reference", "uniform", "stitch"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a contrastive RL run (the agent's own settings in `agent`)."""

    agent: CRLConfig = CRLConfig()
    """Networks, losses and optimisers of the agent."""
    layout: str = "u_maze"
    """Maze layout for training (see `deepcrl.envs.LAYOUTS`)."""
    eval_layout: str | None = None
    """Layout for evaluation; default: `<layout>_eval` when it exists, else `layout`."""
    body: Literal["point", "ant"] = "point"
    """Simulated agent: a point mass (cheap, CPU) or the Ant quadruped."""
    start_goal: StartGoal = "reference"
    """How training episodes draw start and goal (see `deepcrl.envs.Maze`)."""
    max_goal_distance: int = 3
    """Largest start-goal distance in cells for `start_goal="stitch"`."""
    chain_goals: float = 0.0
    """Probability per step at the goal that a training episode draws a new goal and goes on
    (see `deepcrl.envs.Maze`), so that trajectories string several paths together."""
    episode_length: int = 1000
    """Steps per training and evaluation episode."""
    num_envs: int = 256
    """Parallel training environments."""
    unroll_length: int = 62
    """Steps collected from every environment per iteration."""
    sgd_steps: int = 100
    """Gradient steps per iteration; update-to-data = sgd_steps / (num_envs × unroll_length)."""
    batch_size: int = 256
    """Pairs per gradient step (the InfoNCE matrix is batch_size × batch_size)."""
    discount: float = 0.99
    """γ of the geometric law over future goals."""
    buffer_capacity: int = 10_000
    """Time steps kept per environment in the replay ring."""
    window: int | None = None
    """Steps per sampled window; default: min(episode_length, buffer_capacity)."""
    num_eval_envs: int = 64
    """Evaluation episodes per evaluation (deterministic actor)."""

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"Unknown layout {self.layout!r}; expected one of {sorted(LAYOUTS)}.")
        if self.eval_layout is not None and self.eval_layout not in LAYOUTS:
            raise ValueError(f"Unknown eval_layout {self.eval_layout!r}.")
        positive = (
            "episode_length", "num_envs", "unroll_length", "sgd_steps", "batch_size",
            "buffer_capacity", "num_eval_envs",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 < self.discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {self.discount}.")
        if self.unroll_length > self.buffer_capacity:
            raise ValueError(
                f"unroll_length ({self.unroll_length}) must not exceed buffer_capacity "
                f"({self.buffer_capacity})."
            )
        if not 2 <= self.sample_window <= self.buffer_capacity:
            raise ValueError(
                f"window must be in [2, buffer_capacity={self.buffer_capacity}], "
                f"got {self.sample_window}."
            )

    @property
    def sample_window(self) -> int:
        return self.window or min(self.episode_length, self.buffer_capacity)

    @property
    def eval_layout_name(self) -> str:
        if self.eval_layout is not None:
            return self.eval_layout
        return f"{self.layout}_eval" if f"{self.layout}_eval" in LAYOUTS else self.layout

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.unroll_length


class TrainState(eqx.Module):
    """The whole state of a run: resuming from it continues the run exactly."""

    agent: AgentState
    env_state: State
    buffer: TrajectoryBuffer
    key: PRNGKeyArray
    env_steps: Int[Array, ""]
    iteration: Int[Array, ""]


class Trainer(eqx.Module):
    """Contrastive RL on a maze, as pure functions of a [`TrainState`][deepcrl.crl.TrainState].

    `init`, `collect` (one unroll into the buffer), `train_iteration` (collect, then
    `sgd_steps` gradient steps in one `lax.scan`), `evaluate` and `values` are pure and
    jittable; `jax.vmap` over a batch of states runs several seeds at once. The loop around
    them (progress, evaluation schedule, logs, checkpoints, plots) is
    [`deepcrl.crl.run`][deepcrl.crl.run].
    """

    config: TrainConfig = eqx.field(static=True)
    env: Maze
    eval_env: Maze

    def __init__(self, config: TrainConfig):
        self.config = config
        self.env = Maze(
            config.layout,
            agent=config.body,
            episode_length=config.episode_length,
            start_goal=config.start_goal,
            max_goal_distance=config.max_goal_distance,
            chain_goals=config.chain_goals,
        )
        self.eval_env = Maze(
            config.eval_layout_name, agent=config.body, episode_length=config.episode_length
        )

    def goal_of(self, obs: Float[Array, "*batch obs"]) -> Float[Array, "*batch goal"]:
        """The goal-space coordinates (agent xy) of observations."""
        return obs[..., jnp.asarray(self.env.goal_indices)]

    def net_inputs(
        self, obs: Float[Array, "*batch obs"], goal: Float[Array, "*batch goal"]
    ) -> tuple[Float[Array, "*batch obs"], Float[Array, "*batch goal"]]:
        """What the networks see: positions in cell units (world / cell size), the rest as is.

        Positions span tens of world units while actions lie in [-1, 1]; in cell units the
        action keeps its weight in φ(s, a) after the first LayerNorm.
        """
        scale = 1.0 / self.env.layout.cell_size
        position = jnp.asarray(self.env.goal_indices)
        return obs.at[..., position].multiply(scale), goal * scale

    def init(self, key: PRNGKeyArray) -> TrainState:
        """A fresh run: new networks, `num_envs` reset environments, an empty buffer."""
        agent_key, env_key, key = jr.split(key, 3)
        env = self.env
        agent = init_agent(
            self.config.agent,
            obs_size=env.obs_size,
            goal_size=env.goal_size,
            action_size=env.action_size,
            key=agent_key,
        )
        env_state = jax.vmap(env.reset)(jr.split(env_key, self.config.num_envs))
        example = _transition(env_state, jnp.zeros((self.config.num_envs, env.action_size)))
        buffer = buffer_init(example, capacity=self.config.buffer_capacity)
        zero = jnp.zeros((), jnp.int32)
        return TrainState(agent, env_state, buffer, key, env_steps=zero, iteration=zero)

    def collect(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Run the stochastic actor for `unroll_length` steps in every env; store the steps."""
        key, unroll_key = jr.split(state.key)
        actor = state.agent.actor

        def step(env_state: State, k: PRNGKeyArray) -> tuple[State, tuple[dict, Array, State]]:
            action, _ = actor.sample(*self.net_inputs(env_state.obs, env_state.goal), key=k)
            next_state = jax.vmap(self.env.step)(env_state, action)
            return next_state, (_transition(env_state, action), env_state.traj_id, next_state)

        env_state, (unroll, traj_id, after) = jax.lax.scan(
            step, state.env_state, jr.split(unroll_key, self.config.unroll_length)
        )
        buffer = buffer_insert(state.buffer, unroll, traj_id)
        ended = after.done.astype(jnp.float32)
        metrics = {
            "collect/success": jnp.mean(after.metrics["success"]),
            "collect/episodes": jnp.sum(ended),
        }
        state = dataclasses.replace(
            state,
            env_state=env_state,
            buffer=buffer,
            key=key,
            env_steps=state.env_steps + self.config.env_steps_per_iteration,
        )
        return state, metrics

    def sample_batch(self, buffer: TrajectoryBuffer, key: PRNGKeyArray) -> Batch:
        """A batch of `(s, a)` pairs with goals relabelled from their trajectory's future,
        as the networks see them (see `net_inputs`)."""
        now, future = sample_relabelled(
            buffer,
            key,
            window=self.config.sample_window,
            batch_size=self.config.batch_size,
            discount=self.config.discount,
        )
        obs, goal = self.net_inputs(now["obs"], self.goal_of(future["obs"]))
        return Batch(obs=obs, action=now["action"], goal=goal)

    def train_iteration(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Collect one unroll, then take `sgd_steps` gradient steps on replayed batches.

        The buffer must hold a full window first (see `warmup_iterations`).
        """
        state, collect_metrics = self.collect(state)
        key, sgd_key = jr.split(state.key)

        def sgd_step(agent: AgentState, k: PRNGKeyArray) -> tuple[AgentState, dict[str, Array]]:
            batch_key, update_key = jr.split(k)
            batch = self.sample_batch(state.buffer, batch_key)
            return update(self.config.agent, agent, batch, update_key)

        agent, metrics = jax.lax.scan(
            sgd_step, state.agent, jr.split(sgd_key, self.config.sgd_steps)
        )
        metrics = {f"train/{k}": jnp.mean(v) for k, v in metrics.items()} | collect_metrics
        state = dataclasses.replace(state, agent=agent, key=key, iteration=state.iteration + 1)
        return state, metrics

    def warmup_iteration(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Collect one unroll without learning (fills the buffer before the first update)."""
        state, metrics = self.collect(state)
        return dataclasses.replace(state, iteration=state.iteration + 1), metrics

    @property
    def warmup_iterations(self) -> int:
        """Collect-only iterations needed before the buffer holds one sampling window."""
        return -(-self.config.sample_window // self.config.unroll_length)

    def evaluate(
        self, state: TrainState, key: PRNGKeyArray, *, record: int = 0
    ) -> tuple[dict[str, Array], tuple[Float[Array, "record time 2"], Float[Array, "record 2"]]]:
        """Full episodes of the deterministic `eval_actor` on the evaluation maze.

        **Returns:** metrics — `success` (share of episodes that reached the goal at least
        once), `time_at_goal` (steps within the goal threshold, per episode), `final_dist` —
        and the xy trajectories and goals of the first `record` episodes.
        """
        env, actor = self.eval_env, state.agent.eval_actor
        start = jax.vmap(env.reset)(jr.split(key, self.config.num_eval_envs))

        def step(env_state: State, _: None) -> tuple[State, tuple[Array, Array, Array]]:
            action = actor.deterministic(*self.net_inputs(env_state.obs, env_state.goal))
            nxt = jax.vmap(env.step)(env_state, action)
            xy = self.goal_of(env_state.obs[:record])
            return nxt, (nxt.metrics["success"], nxt.metrics["dist"], xy)

        _, (success, dist, xy) = jax.lax.scan(step, start, None, length=self.config.episode_length)
        metrics = {
            "eval/success": jnp.mean(jnp.any(success > 0, axis=0).astype(jnp.float32)),
            "eval/time_at_goal": jnp.mean(jnp.sum(success, axis=0)),
            "eval/final_dist": jnp.mean(dist[-1]),
        }
        return metrics, (jnp.swapaxes(xy, 0, 1), start.goal[:record])

    def values(
        self,
        state: TrainState,
        positions: Float[Array, "n 2"],
        goal_xy: Float[Array, "2"],
    ) -> Float[Array, " n"]:
        """Critic values `f(s, π(s, g), g)` at rest at `positions`, one goal (π: `eval_actor`)."""
        obs, goal = self.net_inputs(
            self.env.observation_at(positions), jnp.broadcast_to(goal_xy, positions.shape)
        )
        action = state.agent.eval_actor.deterministic(obs, goal)
        return state.agent.critic(obs, action, goal)


def _transition(env_state: State, action: Float[Array, "n action"]) -> dict[str, Array]:
    return {"obs": env_state.obs, "action": action}
