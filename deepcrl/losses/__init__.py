"""Losses: the InfoNCE family and classification losses for values (HL-Gauss, Two-Hot, MSE)."""

from ._infonce import (
    InfoNCEVariant as InfoNCEVariant,
    binary_nce as binary_nce,
    contrastive_metrics as contrastive_metrics,
    infonce as infonce,
    logsumexp_penalty as logsumexp_penalty,
)
from ._value import (
    MSE as MSE,
    AbstractHistogramLoss as AbstractHistogramLoss,
    AbstractValueLoss as AbstractValueLoss,
    HLGauss as HLGauss,
    TwoHot as TwoHot,
)
