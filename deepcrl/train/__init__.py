"""Training any learner on any goal-conditioned environment: the learner interface, the
trainer's pure functions, and the resumable run loop with its files and plots."""

from . import _metrics as metrics
from ._actor_critic import (
    AbstractActorCritic as AbstractActorCritic,
    AbstractActorCriticState as AbstractActorCriticState,
    ActorCriticConfig as ActorCriticConfig,
    LRSchedule as LRSchedule,
)
from ._files import (
    CheckpointError as CheckpointError,
    RunLockedError as RunLockedError,
    load_history as load_history,
    run_ended as run_ended,
)
from ._learner import AbstractLearner as AbstractLearner, Batch as Batch
from ._run import (
    DivergenceError as DivergenceError,
    RunConfig as RunConfig,
    RunResult as RunResult,
    eval_keys as eval_keys,
    evaluate_seeds as evaluate_seeds,
    load_run as load_run,
    run as run,
    seed_keys as seed_keys,
)
from ._tandem import Tandem as Tandem, TandemConfig as TandemConfig, TandemState as TandemState
from ._trainer import (
    Episodes as Episodes,
    TrainConfig as TrainConfig,
    Trainer as Trainer,
    TrainState as TrainState,
)

__all__ = ["metrics"]
