import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from .._checks import check_int
from ..envs import AbstractGoalEnv, AbstractGoalEnvState
from ..replay import TrajectoryBuffer, Transition, buffer_init, buffer_insert, sample_relabelled
from . import _metrics as M
from ._actor_critic import check_float
from ._learner import AbstractLearner, Batch


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a learner meets its environment: collection, replay and the update schedule."""

    num_envs: int = 256
    """Parallel training environments."""
    unroll_length: int = 62
    """Steps collected from every environment per iteration."""
    sgd_steps: int = 100
    """Gradient steps per iteration; update-to-data = sgd_steps / (num_envs × unroll_length)."""
    batch_size: int = 256
    """Rows per gradient step."""
    discount: float = 0.99
    """γ of the geometric law over future goals: `P(j − i = k) ∝ γ^k`."""
    random_goals: float = 0.0
    """Share of each batch whose goal is another row's goal instead of its own future (the
    negatives a TD critic needs; contrastive learners get theirs from the batch)."""
    buffer_capacity: int = 10_000
    """Time steps kept per environment in the replay ring."""
    window: int | None = None
    """Steps per sampled window, at least 3 (two steps can straddle an episode's end, leaving
    no step with a future); `None`: the episode length (at least 3), capped by
    `buffer_capacity`."""
    num_eval_envs: int = 64
    """Evaluation episodes per evaluation (deterministic actions)."""

    def __post_init__(self):
        for name in (
            "num_envs", "unroll_length", "sgd_steps", "batch_size", "buffer_capacity",
            "num_eval_envs",
        ):  # fmt: skip
            check_int(name, getattr(self, name), minimum=1)
        check_float("discount", self.discount, low=0.0, high=1.0, low_open=True, high_open=True)
        check_float("random_goals", self.random_goals, low=0.0, high=1.0)
        if self.random_goals > 0 and self.batch_size < 2:
            raise ValueError(
                f"random_goals={self.random_goals} takes other rows' goals: batch_size must be "
                f"at least 2, got {self.batch_size}."
            )
        if self.unroll_length > self.buffer_capacity:
            raise ValueError(
                f"unroll_length ({self.unroll_length}) must not exceed buffer_capacity "
                f"({self.buffer_capacity})."
            )
        if self.window is not None:
            check_int("window", self.window, minimum=3)
            if self.window > self.buffer_capacity:
                raise ValueError(
                    f"window={self.window} must not exceed buffer_capacity={self.buffer_capacity}."
                )

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.unroll_length


class TrainState(eqx.Module):
    """The whole state of a run: resuming from it continues the run exactly."""

    learner: PyTree
    env_state: AbstractGoalEnvState
    buffer: TrajectoryBuffer
    key: PRNGKeyArray
    env_steps: Int[Array, ""]
    iteration: Int[Array, ""]


class Episodes(eqx.Module):
    """Evaluation episodes, one row each: whether the goal was reached at least once, the
    steps spent within reach, the distance after the last step, and where it started, where
    it took its last step from and what its goal was (achieved-goal coordinates)."""

    success: Bool[Array, " episodes"]
    time_at_goal: Float[Array, " episodes"]
    final_dist: Float[Array, " episodes"]
    start: Float[Array, "episodes goal"]
    last: Float[Array, "episodes goal"]
    goal: Float[Array, "episodes goal"]


class Trainer(eqx.Module):
    """Any [`AbstractLearner`][deepcrl.train.AbstractLearner] on any
    [`AbstractGoalEnv`][deepcrl.envs.AbstractGoalEnv], as pure functions of a
    [`TrainState`][deepcrl.train.TrainState].

    An iteration collects `unroll_length` steps from every environment with the learner's
    exploration actions into a trajectory replay, then makes `sgd_steps` updates on
    relabelled batches. `init`, `collect`, `sample_batch`, `train_iteration`, `advance`
    (many iterations in one compiled loop) and `evaluate` are pure and jittable;
    `jax.vmap` over a batch of states runs several seeds at once. The loop around them
    (progress, evaluation schedule, logs, checkpoints, plots) is
    [`deepcrl.train.run`][deepcrl.train.run].
    """

    learner: AbstractLearner
    env: AbstractGoalEnv
    eval_env: AbstractGoalEnv
    config: TrainConfig = eqx.field(static=True)

    def __init__(
        self,
        learner: AbstractLearner,
        env: AbstractGoalEnv,
        eval_env: AbstractGoalEnv | None = None,
        config: TrainConfig = TrainConfig(),
    ):
        """**Arguments:**

        - `learner`: what learns (e.g. [`CRL`][deepcrl.crl.CRL], [`TD`][deepcrl.td.TD]).
        - `env`: the training environment.
        - `eval_env`: the evaluation environment (default: `env`); same sizes as `env`.
        - `config`: collection, replay and update settings.
        """
        eval_env = env if eval_env is None else eval_env
        for name in ("obs_size", "action_size", "goal_size"):
            if getattr(env, name) != getattr(eval_env, name):
                raise ValueError(
                    f"env and eval_env disagree on {name}: "
                    f"{getattr(env, name)} != {getattr(eval_env, name)}."
                )
        if config.random_goals > 0 and learner.goals_are_positives:
            raise ValueError(
                f"random_goals={config.random_goals} needs a learner that learns from the "
                f"reward (e.g. TD): {type(learner).__name__} trains every row's goal as a "
                "positive, so a swapped goal would be a false positive. Use random_goals=0."
            )
        if config.batch_size < 2 and learner.goals_are_positives:
            raise ValueError(
                f"batch_size={config.batch_size}: {type(learner).__name__} takes each row's "
                "negatives from the other rows of the batch, so it needs at least 2."
            )
        self.learner = learner
        self.env = env
        self.eval_env = eval_env
        self.config = config
        # A step's future is a later step of its episode: episodes of one step have none.
        # Three steps in a row always hold such a pair (the middle step's episode would be
        # one step long otherwise); two can straddle an episode's end, and a batch whose
        # every window did stopped the run (likely with few envs: 1 in 1000 with one env and
        # 1000-step episodes).
        if env.episode_length < 2:
            raise ValueError(
                f"episode_length={env.episode_length}: a training episode needs at least 2 "
                "steps, a step and a later one to relabel it with."
            )
        if not 3 <= self.sample_window <= config.buffer_capacity:
            raise ValueError(
                f"window must be in [3, buffer_capacity={config.buffer_capacity}], "
                f"got {self.sample_window}."
            )

    @property
    def sample_window(self) -> int:
        """Steps per sampled window."""
        c = self.config
        if c.window is not None:
            return c.window
        return min(max(self.env.episode_length, 3), c.buffer_capacity)

    @property
    def warmup_iterations(self) -> int:
        """Collect-only iterations needed before the buffer holds one sampling window."""
        return -(-self.sample_window // self.config.unroll_length)

    def describe(self) -> dict[str, Any]:
        """Learner, environments and training settings (JSON-able; a run compares it on
        resume)."""
        return {
            "learner": self.learner.describe(),
            "env": self.env.describe(),
            "eval_env": self.eval_env.describe(),
            "train": dataclasses.asdict(self.config),
        }

    # ------------------------------------------------------------------------- run

    def init(self, key: PRNGKeyArray) -> TrainState:
        """A fresh run: new networks, `num_envs` reset environments, an empty buffer."""
        learner_key, env_key, key = jr.split(key, 3)
        env = self.env
        learner = self.learner.init(
            learner_key,
            obs_size=env.obs_size,
            goal_size=env.goal_size,
            action_size=env.action_size,
        )
        env_state = jax.vmap(env.reset)(jr.split(env_key, self.config.num_envs))
        action = jnp.zeros((self.config.num_envs, env.action_size), jnp.float32)
        example = Transition(obs=env_state.obs, action=action, goal=env_state.goal)
        buffer = buffer_init(example, capacity=self.config.buffer_capacity)
        zero = jnp.zeros((), jnp.int32)
        return TrainState(learner, env_state, buffer, key, env_steps=zero, iteration=zero)

    def collect(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Run the learner's exploration for `unroll_length` steps in every env; store them."""
        key, unroll_key = jr.split(state.key)

        def step(
            env_state: AbstractGoalEnvState, k: PRNGKeyArray
        ) -> tuple[AbstractGoalEnvState, tuple[Transition, Array, Array, Array]]:
            obs, goal = self.env.net_inputs(env_state.obs, env_state.goal)
            action = self.learner.act(state.learner, obs, goal, k)
            after = jax.vmap(self.env.step)(env_state, action)
            transition = Transition(obs=env_state.obs, action=action, goal=env_state.goal)
            return after, (transition, env_state.traj_id, after.metrics["success"], after.done)

        env_state, (unroll, traj_id, success, done) = jax.lax.scan(
            step, state.env_state, jr.split(unroll_key, self.config.unroll_length)
        )
        buffer = buffer_insert(state.buffer, unroll, traj_id)
        metrics = {
            M.COLLECT_SUCCESS: jnp.mean(success),
            M.COLLECT_EPISODES: jnp.sum(done.astype(jnp.float32)),
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
        """A batch of stored steps, their next steps and hindsight goals, as the networks see
        them; `reward` says whether the next step reaches the goal."""
        c = self.config
        sample = sample_relabelled(
            buffer,
            key,
            window=self.sample_window,
            batch_size=c.batch_size,
            discount=c.discount,
        )
        now, nxt = sample.now, sample.next
        goal = self.env.achieved_goal(sample.future.obs)
        if c.random_goals > 0:
            goal_key, share_key = jr.split(jr.fold_in(key, 1))
            other = jr.permutation(goal_key, goal)
            swap = jr.uniform(share_key, (c.batch_size, 1)) < c.random_goals
            goal = jnp.where(swap, other, goal)
        reward = self.env.reached(self.env.achieved_goal(nxt.obs), goal).astype(jnp.float32)
        obs, net_goal = self.env.net_inputs(now.obs, goal)
        next_obs, _ = self.env.net_inputs(nxt.obs, goal)
        return Batch(obs=obs, action=now.action, goal=net_goal, next_obs=next_obs, reward=reward)

    def learn(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """`sgd_steps` updates on replayed batches (one `lax.scan`); metrics are their means.

        The buffer must hold a full window first (see `warmup_iterations`).
        """
        key, sgd_key = jr.split(state.key)

        def sgd_step(learner: PyTree, k: PRNGKeyArray) -> tuple[PyTree, dict[str, Array]]:
            batch_key, update_key = jr.split(k)
            batch = self.sample_batch(state.buffer, batch_key)
            return self.learner.update(learner, batch, update_key)

        learner, metrics = jax.lax.scan(
            sgd_step, state.learner, jr.split(sgd_key, self.config.sgd_steps)
        )
        metrics = {M.train(k): jnp.mean(v) for k, v in metrics.items()}
        return dataclasses.replace(state, learner=learner, key=key), metrics

    def train_iteration(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Collect one unroll, then take `sgd_steps` gradient steps."""
        state, collect_metrics = self.collect(state)
        state, metrics = self.learn(state)
        state = dataclasses.replace(state, iteration=state.iteration + 1)
        return state, metrics | collect_metrics

    def warmup_iteration(self, state: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Collect one unroll without learning (fills the buffer before the first update)."""
        state, metrics = self.collect(state)
        return dataclasses.replace(state, iteration=state.iteration + 1), metrics

    def advance(
        self, state: TrainState, iterations: Int[Array, ""], learn: Bool[Array, ""]
    ) -> tuple[TrainState, dict[str, Array]]:
        """`iterations` iterations in one compiled loop, with no return to the host between
        them: each collects an unroll, then learns when `learn` is True (warm-up otherwise).

        `iterations` and `learn` are traced, so one compilation serves every chunk length and
        the warm-up; under `jax.vmap` over seeds keep them unbatched. **Returns:** the state
        and the metrics averaged over the iterations (the learning metrics are zero when
        `learn` is False).
        """

        def skip(state: TrainState) -> tuple[TrainState, dict[str, Array]]:
            # A lambda: eval_shape compares functions, and the bound method holds traced arrays.
            _, shapes = jax.eval_shape(lambda s: self.learn(s), state)
            return state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def iteration(state: TrainState) -> tuple[TrainState, dict[str, Array]]:
            state, collect_metrics = self.collect(state)
            state, metrics = jax.lax.cond(learn, lambda s: self.learn(s), skip, state)
            state = dataclasses.replace(state, iteration=state.iteration + 1)
            return state, metrics | collect_metrics

        _, shapes = jax.eval_shape(iteration, state)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def body(_: Int[Array, ""], carry: tuple[TrainState, dict]) -> tuple[TrainState, dict]:
            state, total = carry
            state, metrics = iteration(state)
            return state, jax.tree.map(jnp.add, total, metrics)

        state, total = jax.lax.fori_loop(0, iterations, body, (state, zeros))
        count = jnp.maximum(iterations, 1).astype(jnp.float32)
        return state, jax.tree.map(lambda t: t / count, total)

    def evaluate(
        self, state: TrainState, key: PRNGKeyArray, *, record: int = 0
    ) -> tuple[
        dict[str, Array], tuple[Float[Array, "record time goal"], Float[Array, "record goal"]]
    ]:
        """Full episodes of the learner's deterministic actions on the evaluation env (an
        episode that terminates early counts up to its end).

        **Returns:** metrics — `success` (share of episodes that reached the goal at least
        once), `time_at_goal` (steps within the goal threshold, per episode), `final_dist`
        (distance to the goal after the last step) — and the achieved-goal trajectories and
        goals of the first `record` episodes.
        """
        episodes, recorded = self._episodes(state, key, record)
        metrics = {
            M.EVAL_SUCCESS: jnp.mean(episodes.success.astype(jnp.float32)),
            M.EVAL_TIME_AT_GOAL: jnp.mean(episodes.time_at_goal),
            M.EVAL_FINAL_DIST: jnp.mean(episodes.final_dist),
        }
        return metrics, recorded

    def evaluate_episodes(self, state: TrainState, key: PRNGKeyArray) -> Episodes:
        """What `evaluate` averages, per episode (with each episode's start and goal), e.g. to
        split success by the goal's distance."""
        return self._episodes(state, key, 0)[0]

    def _episodes(
        self, state: TrainState, key: PRNGKeyArray, record: int
    ) -> tuple[Episodes, tuple[Array, Array]]:
        env = self.eval_env
        start = jax.vmap(env.reset)(jr.split(key, self.config.num_eval_envs))

        def step(carry: tuple[Any, ...], _: None) -> tuple[Any, tuple[Array, ...]]:
            env_state, last, alive, final_dist = carry
            obs, goal = env.net_inputs(env_state.obs, env_state.goal)
            action = self.learner.act_eval(state.learner, obs, goal)
            nxt = jax.vmap(env.step)(env_state, action)
            here = jnp.where(alive[:, None], env.achieved_goal(env_state.obs), last)
            success = jnp.where(alive, nxt.metrics["success"], 0.0)
            final_dist = jnp.where(alive, nxt.metrics["dist"], final_dist)
            # An episode that ends early (an Ant that falls) auto-resets to a new start and
            # goal: nothing after its end counts, and its trajectory holds its last position.
            return (nxt, here, alive & ~nxt.done, final_dist), (success, here[:record])

        first = env.achieved_goal(start.obs)
        alive = jnp.ones(first.shape[0], dtype=bool)
        carry = (start, first, alive, jnp.zeros(first.shape[0], dtype=jnp.float32))
        (_, last, _, final_dist), (success, xy) = jax.lax.scan(
            step, carry, None, length=env.episode_length
        )
        episodes = Episodes(
            success=jnp.any(success > 0, axis=0),
            time_at_goal=jnp.sum(success, axis=0),
            final_dist=final_dist,
            start=first,
            last=last,
            goal=start.goal,
        )
        return episodes, (jnp.swapaxes(xy, 0, 1), start.goal[:record])

    def values(
        self,
        state: TrainState,
        obs: Float[Array, "n obs"],
        goal: Float[Array, "n goal"],
    ) -> Float[Array, " n"]:
        """The critic's values `V(s, π(s, g), g)` (π: the deterministic actions) of raw
        observations and goals."""
        obs, goal = self.eval_env.net_inputs(obs, goal)
        action = self.learner.act_eval(state.learner, obs, goal)
        return self.learner.value(state.learner, obs, action, goal)
