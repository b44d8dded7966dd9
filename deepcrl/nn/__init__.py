"""Networks: scanned residual stacks, contrastive critic, energies and the tanh-Gaussian actor."""

from ._actor import TanhGaussianActor as TanhGaussianActor
from ._critic import ContrastiveCritic as ContrastiveCritic
from ._energy import (
    ENERGIES as ENERGIES,
    EnergyName as EnergyName,
    cosine as cosine,
    dot as dot,
    energy_fn as energy_fn,
    neg_l2 as neg_l2,
    neg_sq_l2 as neg_sq_l2,
    pairwise_energy as pairwise_energy,
)
from ._q_critic import QEnsemble as QEnsemble
from ._residual import (
    AbstractResidualMLP as AbstractResidualMLP,
    ResidualBlock as ResidualBlock,
    ResidualMLP as ResidualMLP,
    UnrolledResidualMLP as UnrolledResidualMLP,
    default_init as default_init,
)
