"""What a trainer needs from a goal-conditioned environment, whatever simulates it."""

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


class AbstractGoalEnvState(eqx.Module):
    """The state of one goal-conditioned environment, as a trainer reads it.

    A concrete state (e.g. [`State`][deepcrl.envs.State]) may hold anything else its
    simulator needs (physics data, PRNG keys) next to these fields.
    """

    obs: eqx.AbstractVar[Float[Array, " obs"]]
    """The observation; `obs[goal_indices]` is the achieved goal."""
    goal: eqx.AbstractVar[Float[Array, " goal"]]
    """The commanded goal, in the same space as the achieved goal."""
    done: eqx.AbstractVar[Bool[Array, ""]]
    """`True` when the last step ended an episode: this state already starts the next one."""
    traj_id: eqx.AbstractVar[Int[Array, ""]]
    """Episode counter of this environment, incremented at every reset."""
    metrics: eqx.AbstractVar[dict[str, Array]]
    """At least `success` (1.0 when the last step ended within the success radius of the
    goal, else 0.0) and `dist` (the distance from the achieved goal to the goal after that
    step, before any reset), describing the step that produced this state."""


class AbstractGoalEnv(eqx.Module):
    """A goal-conditioned environment with deepcrl's auto-reset semantics.

    `reset(key)` and `step(state, action)` act on **one** environment (trainers `jax.vmap`
    them). When a step ends an episode it returns the first state of a new one, with a
    freshly drawn start and goal, `traj_id` incremented and `done=True`, so that a
    trajectory in a replay buffer is a run of equal `traj_id`s.

    A goal is a point of the achieved-goal space: `achieved_goal(obs)` reads it from an
    observation, and a state *reaches* a goal when the two are closer than
    `goal_threshold`. `net_inputs` says what the networks see (e.g. positions rescaled to
    a unit that makes them comparable with actions); rewards and success are always
    computed on the raw values.

    Implementations: [`Maze`][deepcrl.envs.Maze]. A wrapped simulator (Brax, MuJoCo
    Playground) or a user's own environment implements the same methods.
    """

    episode_length: eqx.AbstractVar[int]
    goal_threshold: eqx.AbstractVar[float]

    @property
    @abc.abstractmethod
    def obs_size(self) -> int:
        """Length of an observation."""

    @property
    @abc.abstractmethod
    def action_size(self) -> int:
        """Length of an action; every entry lies in `[-1, 1]`."""

    @property
    @abc.abstractmethod
    def goal_indices(self) -> tuple[int, ...]:
        """Indices of the achieved goal in an observation."""

    @property
    def goal_size(self) -> int:
        """Length of a goal."""
        return len(self.goal_indices)

    @abc.abstractmethod
    def reset(self, key: PRNGKeyArray) -> AbstractGoalEnvState:
        """The first state of an episode; every later reset follows from `key`."""

    @abc.abstractmethod
    def step(self, state: Any, action: Float[Array, " action"]) -> Any:
        """The next state (the first of a new episode when this step ended one); `state` is
        this environment's own state type."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON-able description: equal descriptions mean equal environments (a run
        refuses to resume with another one)."""

    def achieved_goal(self, obs: Float[Array, "*batch obs"]) -> Float[Array, "*batch goal"]:
        """The goal an observation achieves: `obs[..., goal_indices]`."""
        return obs[..., jnp.asarray(self.goal_indices)]

    def reached(
        self, achieved: Float[Array, "*batch goal"], goal: Float[Array, "*batch goal"]
    ) -> Bool[Array, "*batch"]:
        """Whether `achieved` lies within `goal_threshold` of `goal`."""
        return jnp.linalg.norm(achieved - goal, axis=-1) < self.goal_threshold

    def net_inputs(
        self, obs: Float[Array, "*batch obs"], goal: Float[Array, "*batch goal"]
    ) -> tuple[Float[Array, "*batch obs"], Float[Array, "*batch goal"]]:
        """What the networks see of an observation and a goal (default: both as they are)."""
        return obs, goal
