"""Contrastive RL: the agent's updates, the trainer's pure functions and the run loop."""

from ._agent import (
    AgentState as AgentState,
    Batch as Batch,
    CRLConfig as CRLConfig,
    actor_loss as actor_loss,
    alpha_loss as alpha_loss,
    critic_loss as critic_loss,
    init_agent as init_agent,
    learning_rate as learning_rate,
    lr_scale as lr_scale,
    update as update,
)
from ._run import (
    RunConfig as RunConfig,
    RunResult as RunResult,
    load_checkpoint as load_checkpoint,
    run as run,
    save_checkpoint as save_checkpoint,
)
from ._trainer import TrainConfig as TrainConfig, Trainer as Trainer, TrainState as TrainState
