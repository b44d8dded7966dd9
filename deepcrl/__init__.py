"""deepcrl: deep self-supervised reinforcement learning in JAX and Equinox."""

import importlib.metadata

from . import (
    crl as crl,
    envs as envs,
    losses as losses,
    nn as nn,
    replay as replay,
    td as td,
    train as train,
)

__version__ = importlib.metadata.version("deepcrl")
