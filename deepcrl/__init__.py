"""deepcrl: deep self-supervised reinforcement learning in JAX and Equinox."""

import importlib.metadata

from . import envs as envs, losses as losses, nn as nn, replay as replay

__version__ = importlib.metadata.version("deepcrl")
