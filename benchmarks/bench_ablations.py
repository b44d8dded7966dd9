"""Training speed of the ablated networks (`examples/ablations.py`): one training iteration
of the CRL point preset at depth 16 with the block as built, without LayerNorm, with ReLU
and with the actor's head norm, and the iteration's learner updates alone.

`python -m benchmarks ablations`; `DEEPCRL_BENCH_QUICK=1` for depth 4.

The settings are timed interleaved (each round times every setting once), so a shared
machine's load falls on all of them alike; the ratios to the block as built are the result.
"""

import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from benchmarks._preset import PRESET, updates, warm_trainer
from benchmarks._table import save_table
from benchmarks._timing import interleaved

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
import ablations  # noqa: E402  # pyright: ignore[reportMissingImports]

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
DEPTH = 4 if QUICK else 16
SETTINGS = ("full", "no_norm", "relu", "head_norm")
PARTS = ("iteration", "update")
ROUNDS = 3 if QUICK else 7


def build(name: str) -> dict[str, Callable[[], Any]]:
    """The preset's trainer with the ablation's settings, its buffer filled past warm-up: its
    compiled iteration and updates, each called once."""
    trainer, state, advance, _ = warm_trainer(DEPTH, **ablations.ABLATIONS[name])
    batch = eqx.filter_jit(lambda t, s: t.sample_batch(s.buffer, s.key))(trainer, state)
    update = eqx.filter_jit(updates)
    calls = {
        "iteration": lambda: advance(trainer, state, jnp.asarray(1), jnp.asarray(True)),
        "update": lambda: update(trainer, state, batch),
    }
    for call in calls.values():  # compile and warm up
        jax.block_until_ready(call())
    return calls


def main() -> None:
    load = os.getloadavg()
    built = {name: build(name) for name in SETTINGS}
    # Each round: every setting's iteration, then every setting's updates.
    calls = {(part, name): built[name][part] for part in PARTS for name in SETTINGS}
    times = interleaved(calls, ROUNDS)
    medians: dict[str, dict[str, float]] = {name: {} for name in SETTINGS}
    for (part, name), t in times.items():
        medians[name][f"{part} s"] = statistics.median(t.wall)
        medians[name][f"{part} CPU s"] = statistics.median(t.cpu)
    base = medians["full"]
    rows = []
    for name, m in medians.items():
        row: dict[str, Any] = {"setting": name, "depth": DEPTH, **m}
        for column in ("iteration s", "iteration CPU s", "update CPU s"):
            row[f"{column} / full"] = m[column] / base[column]
        rows.append(row)
    preset = PRESET
    notes = (
        f"CRL point preset (U-maze, {preset.train.num_envs} envs × "
        f"{preset.train.unroll_length} steps, {preset.train.sgd_steps} SGD steps, batch "
        f"{preset.train.batch_size}, width {preset.learner.critic_width}), actor and critic at "
        f"depth {DEPTH}, one seed. iteration = one compiled `advance` call (collect + learn); "
        "update = the iteration's SGD steps on one batch. Medians of "
        f"{ROUNDS} interleaved rounds; CPU s is the process's CPU time over all threads. "
        f"1-minute load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores. Settings as in `examples/ablations.py`: no_norm = "
        '`layer_norm=False`, relu = `activation="relu"`, head_norm = `actor_head_norm=True`.'
    )
    save_table("ablations", "Training speed of the ablated networks", rows, notes)


if __name__ == "__main__":
    main()
