"""Contrastive RL: a learner whose critic is trained with InfoNCE, from no reward."""

from ._learner import (
    CRL as CRL,
    CRLConfig as CRLConfig,
    CRLState as CRLState,
    actor_loss as actor_loss,
    critic_loss as critic_loss,
)
