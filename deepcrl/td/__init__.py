"""Goal-conditioned TD learning with classification critics (HL-Gauss, Two-Hot) or MSE."""

from ._learner import (
    TD as TD,
    TDConfig as TDConfig,
    TDState as TDState,
    ValueLossName as ValueLossName,
    actor_loss as actor_loss,
    critic_loss as critic_loss,
    td_target as td_target,
)
