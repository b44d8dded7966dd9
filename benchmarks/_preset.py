"""The CRL point preset's trainer as the benchmarks time it: built at a given depth and
settings, its buffer filled past the sampling window as a run's warm-up does."""

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from deepcrl.crl import CRL
from deepcrl.train import Trainer

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
import train_crl  # noqa: E402  # pyright: ignore[reportMissingImports]

PRESET = train_crl.PRESETS["point"][1]


class Warm(NamedTuple):
    """A trainer, its state after warm-up, its compiled `advance`, and the warm-up's seconds
    (compilation included)."""

    trainer: Trainer
    state: Any
    advance: Any
    warmup_s: float


def warm_trainer(depth: int, batch_size: int | None = None, **settings: Any) -> Warm:
    """The preset with actor and critic at `depth`, `batch_size` (default the preset's) and
    the learner `settings`, after the warm-up iterations."""
    config = dataclasses.replace(PRESET.learner, actor_depth=depth, critic_depth=depth, **settings)
    c = PRESET.train
    c = c if batch_size is None else dataclasses.replace(c, batch_size=batch_size)
    learner = CRL(config).with_total_updates(total_iterations(c) * c.sgd_steps)
    trainer = Trainer(learner, PRESET.env.make(), PRESET.env.make_eval(), c)
    state = eqx.filter_jit(lambda t, k: t.init(k))(trainer, jr.key(0))
    advance = eqx.filter_jit(lambda t, s, n, learn: t.advance(s, n, learn))
    start = time.perf_counter()
    warmup = jnp.asarray(trainer.warmup_iterations)
    state, _ = jax.block_until_ready(advance(trainer, state, warmup, jnp.asarray(False)))
    return Warm(trainer, state, advance, time.perf_counter() - start)


def total_iterations(c: Any) -> int:
    """A preset run's iterations at the train config `c`."""
    return PRESET.run.total_env_steps // c.env_steps_per_iteration


def updates(t: Trainer, s: Any, b: Any):
    """The iteration's `sgd_steps` learner updates, all on the one batch `b`."""

    def step(learner, k):
        learner, metrics = t.learner.update(learner, b, k)
        return learner, metrics["critic_loss"]

    return jax.lax.scan(step, s.learner, jr.split(s.key, t.config.sgd_steps))
