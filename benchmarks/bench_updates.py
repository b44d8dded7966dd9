"""More updates or more depth, at what cost: one training iteration of each run that the
experiments compare, depth 4 at 50 and at 200 SGD steps per iteration and depth 16 at 50, on
each maze where they compare them (the point U4- and U5-mazes, OGBench's medium maze), with
their seeds vmapped as the runs had them.

`python -m benchmarks updates`; `DEEPCRL_BENCH_QUICK=1` for one seed and fewer rounds.

The trainers are the sweeps' own (`depth_sweep.py` and `batch_depth.py` at the maze's
scale), and a maze's settings are timed interleaved (each round times every setting once),
so a shared machine's load falls on all of them alike; the ratios are the result.
"""

import os
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from benchmarks._table import save_table
from benchmarks._timing import interleaved
from deepcrl.train import Trainer, seed_keys
from deepcrl.train._run import _for_run

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
import sweep  # noqa: E402  # pyright: ignore[reportMissingImports]

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
# The compared runs of a maze's scale: (experiment script, grid entry).
RUNS = {
    "depth 4, 50 SGD steps": ("depth_sweep", "d4"),
    "depth 4, 200 SGD steps": ("batch_depth", "d4-b256-sgd200"),
    "depth 16, 50 SGD steps": ("depth_sweep", "d16"),
}
BASE = "depth 16, 50 SGD steps"
# The mazes (scale names of both scripts) where the experiments compare the runs.
SCALES = ("cpu-u4", "cpu-u5", "cpu-medium")
ROUNDS = 2 if QUICK else 5

_init = eqx.filter_jit(eqx.filter_vmap(lambda t, k: t.init(k), in_axes=(None, 0)))
# Not donated, unlike a run's: every round starts from the same warmed-up state.
_advance = eqx.filter_jit(
    eqx.filter_vmap(lambda t, s, n, learn: t.advance(s, n, learn), in_axes=(None, 0, None, None))
)


def setting(script: str, scale_name: str, name: str) -> tuple[Trainer, int]:
    """The trainer of the sweep's setting `name` as its run trains it (the learning-rate
    schedule spanning the run), and the scale's number of seeds."""
    scale = __import__(script).SCALES[scale_name]
    s = next(s for s in sweep.crl_settings(scale) if s.name == name)
    return _for_run(s.trainer, s.run)[0], scale.seeds


def iteration(trainer: Trainer, state: Any) -> Any:
    """One learning iteration of every seed."""
    return _advance(trainer, state, jnp.asarray(1), jnp.asarray(True))


def warm(trainer: Trainer, seeds: int) -> Any:
    """The vmapped state after the warm-up iterations (buffer filled past the window), with
    one learning iteration compiled and run."""
    state = _init(trainer, seed_keys(0, seeds))
    warmup = jnp.asarray(trainer.warmup_iterations)
    state, _ = _advance(trainer, state, warmup, jnp.asarray(False))
    jax.block_until_ready(iteration(trainer, state))
    return state


def maze_rows(scale_name: str) -> list[dict]:
    """The compared runs on one maze, timed against each other."""
    built = {}
    for label, (script, name) in RUNS.items():
        trainer, seeds = setting(script, scale_name, name)
        seeds = 1 if QUICK else seeds
        built[label] = (trainer, seeds, warm(trainer, seeds))
    times = interleaved(
        {label: partial(iteration, trainer, state) for label, (trainer, _, state) in built.items()},
        ROUNDS,
    )
    base = statistics.median(times[BASE].wall)
    base_cpu = statistics.median(times[BASE].cpu)
    rows = []
    for label, (trainer, seeds, _) in built.items():
        c, learner = trainer.config, trainer.learner.config
        t = times[label]
        iteration_s, iteration_cpu = statistics.median(t.wall), statistics.median(t.cpu)
        rows.append(
            {
                "scale": scale_name,
                "run": label,
                "depth": learner.critic_depth,
                "SGD steps": c.sgd_steps,
                "seeds": seeds,
                "iteration (s)": iteration_s,
                f"iteration / {BASE}": iteration_s / base,
                f"CPU time / {BASE}": iteration_cpu / base_cpu,
                "spread (max/min)": max(t.wall) / min(t.wall),
            }
        )
    return rows


def main() -> None:
    load = os.getloadavg()
    rows = [row for scale_name in SCALES for row in maze_rows(scale_name)]
    script, name = RUNS[BASE]
    c = setting(script, SCALES[0], name)[0].config
    notes = (
        f"Point mass, {c.num_envs} envs × {c.unroll_length} steps per iteration, batch "
        f"{c.batch_size}, width 128: the runs of `depth_sweep.py --scale S` (d4, d16) and "
        "`batch_depth.py --scale S` (d4-b256-sgd200), S in "
        f"{', '.join(SCALES)}. iteration = one compiled, vmapped `advance` call (collect + "
        "learn), evaluation not included. Medians of "
        f"{ROUNDS} interleaved rounds per maze; ratios are within a maze; CPU time is the "
        f"process's over all threads. 1-minute load average {load[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores."
    )
    save_table("updates", "More updates or more depth: the cost of an iteration", rows, notes)


if __name__ == "__main__":
    main()
