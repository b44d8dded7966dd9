import abc
import dataclasses
from typing import Any

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray, PyTree


class Batch(eqx.Module):
    """A training batch, as the networks see it (see `AbstractGoalEnv.net_inputs`).

    Row `k` is a stored step `(obs, action)`, the next step of the same trajectory
    (`next_obs`), and a goal relabelled in hindsight: a later state of the same trajectory,
    or (a configurable share) another row's goal. `reward` is 1.0 when `next_obs` reaches
    the goal (measured on raw values, before `net_inputs`), else 0.0.
    """

    obs: Float[Array, "batch obs"]
    action: Float[Array, "batch action"]
    goal: Float[Array, "batch goal"]
    next_obs: Float[Array, "batch obs"]
    reward: Float[Array, " batch"]


class AbstractLearner(eqx.Module):
    """A goal-conditioned learner as the [`Trainer`][deepcrl.train.Trainer] drives it.

    A learner is a static description (its hyper-parameters); what it learns lives in a
    separate state pytree made by `init` and advanced by `update`. Every method is pure and
    jittable, and acts on batches. Implementations:
    [`CRL`][deepcrl.crl.CRL] (contrastive critic, InfoNCE) and [`TD`][deepcrl.td.TD]
    (temporal-difference critic with HL-Gauss, Two-Hot or MSE).
    """

    config: eqx.AbstractVar[Any]
    """The learner's hyper-parameters (a frozen dataclass)."""

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int) -> PyTree:
        """Fresh networks and optimiser states for an environment of these sizes."""

    @abc.abstractmethod
    def update(
        self, state: PyTree, batch: Batch, key: PRNGKeyArray
    ) -> tuple[PyTree, dict[str, Array]]:
        """One SGD step on `batch`. **Returns:** the new state and scalar metrics."""

    @abc.abstractmethod
    def act(
        self,
        state: PyTree,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        key: PRNGKeyArray,
    ) -> Float[Array, "batch action"]:
        """Exploration actions in `[-1, 1]` (data collection)."""

    @abc.abstractmethod
    def act_eval(
        self, state: PyTree, obs: Float[Array, "batch obs"], goal: Float[Array, "batch goal"]
    ) -> Float[Array, "batch action"]:
        """Deterministic actions (evaluation)."""

    @abc.abstractmethod
    def value(
        self,
        state: PyTree,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        """The critic's value of `(obs, action)` for `goal` (value maps)."""

    @property
    def goals_are_positives(self) -> bool:
        """Whether the learner trains every batch row's goal as that row's positive, taking
        its negatives from the other rows (contrastive critics). Such a learner must not be
        given `TrainConfig.random_goals`: a swapped goal would be a false positive."""
        return False

    def with_total_updates(self, total_updates: int) -> "AbstractLearner":
        """This learner, told how many SGD steps the run will make (learning-rate schedules
        that span the whole run need it). The default ignores it."""
        del total_updates
        return self

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: the learner's class and hyper-parameters."""
        return {"learner": type(self).__name__, **dataclasses.asdict(self.config)}
