import dataclasses
from typing import Any

import equinox as eqx
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._learner import AbstractLearner, Batch


@dataclasses.dataclass(frozen=True)
class TandemConfig:
    """The hyper-parameters of both learners of a [`Tandem`][deepcrl.train.Tandem]."""

    collector: Any
    learner: Any


class TandemState(eqx.Module):
    collector: PyTree
    learner: PyTree


class Tandem(AbstractLearner):
    """Two learners on one stream of data, to separate what a learner learns from the data it
    is given: the `collector` acts in the environment and learns from its own data as
    usual; the `learner` makes an SGD step on every same batch but never acts while data is
    collected. Evaluation, values and value maps are the `learner`'s.

    ```python
    shallow_on_deep = Tandem(collector=CRL(CRLConfig(actor_depth=16, critic_depth=16)),
                             learner=CRL(CRLConfig()))
    ```

    Metrics are the learner's under their own names, and the collector's with a
    `collector_` prefix.
    """

    collector: AbstractLearner
    learner: AbstractLearner

    def __init__(self, collector: AbstractLearner, learner: AbstractLearner):
        self.collector = collector
        self.learner = learner

    @property
    def goals_are_positives(self) -> bool:
        return self.collector.goals_are_positives or self.learner.goals_are_positives

    @property
    def config(self) -> TandemConfig:
        return TandemConfig(self.collector.config, self.learner.config)

    def init(self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int):
        sizes = dict(obs_size=obs_size, goal_size=goal_size, action_size=action_size)
        collector_key, learner_key = jr.split(key)
        return TandemState(
            collector=self.collector.init(collector_key, **sizes),
            learner=self.learner.init(learner_key, **sizes),
        )

    def update(
        self, state: TandemState, batch: Batch, key: PRNGKeyArray
    ) -> tuple[TandemState, dict[str, Array]]:
        collector_key, learner_key = jr.split(key)
        collector, collector_metrics = self.collector.update(state.collector, batch, collector_key)
        learner, metrics = self.learner.update(state.learner, batch, learner_key)
        metrics = dict(metrics) | {f"collector_{k}": v for k, v in collector_metrics.items()}
        return TandemState(collector=collector, learner=learner), metrics

    def act(
        self,
        state: TandemState,
        obs: Float[Array, "batch obs"],
        goal: Float[Array, "batch goal"],
        key: PRNGKeyArray,
    ) -> Float[Array, "batch action"]:
        return self.collector.act(state.collector, obs, goal, key)

    def act_eval(
        self, state: TandemState, obs: Float[Array, "batch obs"], goal: Float[Array, "batch goal"]
    ) -> Float[Array, "batch action"]:
        return self.learner.act_eval(state.learner, obs, goal)

    def value(
        self,
        state: TandemState,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        return self.learner.value(state.learner, obs, action, goal)

    def with_total_updates(self, total_updates: int) -> "Tandem":
        return Tandem(
            self.collector.with_total_updates(total_updates),
            self.learner.with_total_updates(total_updates),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "learner": "Tandem",
            "collector": self.collector.describe(),
            "trained": self.learner.describe(),
        }
