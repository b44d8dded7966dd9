"""deepcrl: deep self-supervised reinforcement learning in JAX and Equinox."""

import importlib.metadata

from . import envs as envs, losses as losses, nn as nn

__version__ = importlib.metadata.version("deepcrl")
