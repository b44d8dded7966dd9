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

try:
    __version__ = importlib.metadata.version("deepcrl")
except importlib.metadata.PackageNotFoundError:  # a source checkout on PYTHONPATH, not installed
    __version__ = "0+unknown"
