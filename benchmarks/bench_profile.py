"""Where a training iteration's time goes, at depth 16 and 64 and at batch 1024: the CRL
point preset's iteration split into collection (simulation and the actor), replay sampling,
the learner's updates (the networks' own arithmetic), evaluation (per iteration, at the
preset's evaluation rate) and compilation (per run configuration, spread over a run's
iterations).

`python -m benchmarks profile`; `DEEPCRL_BENCH_QUICK=1` for depth 4 and 8 at the preset's
batch.

Each part is its own compiled program, timed after a warm-up call as the median of
`REPEATS` calls; seeds are one (a vmapped multi-seed run multiplies every part alike).
"""

import os
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from benchmarks._preset import PRESET, total_iterations, updates, warm_trainer
from benchmarks._table import save_table
from deepcrl.train import Trainer

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
# (depth, batch size): batch 1024 is the batch sweep's largest CPU setting (batch_depth.py).
CASES = ((4, 256), (8, 256)) if QUICK else ((16, 256), (64, 256), (4, 1024))
REPEATS = 3


def _median_time(fn, *args) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(depth: int, batch_size: int) -> dict:
    trainer, state, advance, compile_s = warm_trainer(depth, batch_size)
    c = trainer.config
    total_iters = total_iterations(c)
    batch = eqx.filter_jit(lambda t, s: t.sample_batch(s.buffer, s.key))(trainer, state)

    def sample(t: Trainer, s):
        keys = jr.split(s.key, c.sgd_steps)
        # Every field reduced, so that no gather of the batch is compiled away.
        return jax.lax.map(
            lambda k: sum(jnp.sum(x) for x in jax.tree.leaves(t.sample_batch(s.buffer, k))), keys
        )

    parts = {
        "collect": _median_time(eqx.filter_jit(lambda t, s: t.collect(s)), trainer, state),
        "sample": _median_time(eqx.filter_jit(sample), trainer, state),
        "update": _median_time(eqx.filter_jit(updates), trainer, state, batch),
    }
    iteration = _median_time(advance, trainer, state, jnp.asarray(1), jnp.asarray(True))
    evaluate = _median_time(
        eqx.filter_jit(lambda t, s, k: t.evaluate(s, k)[0]), trainer, state, jr.key(1)
    )
    per_iteration = {
        **parts,
        "evaluate": evaluate / PRESET.run.eval_every,
        "compile": compile_s / total_iters,
    }
    total = iteration + per_iteration["evaluate"] + per_iteration["compile"]
    row = {"depth": depth, "batch": batch_size, "iteration (s)": iteration}
    for name, seconds in per_iteration.items():
        row[f"{name} (s)"] = seconds
        row[f"{name} %"] = 100 * seconds / total
    row["other %"] = 100 * (iteration - sum(parts.values())) / total
    return row


def main() -> None:
    rows = [profile(depth, batch) for depth, batch in CASES]
    preset = PRESET
    notes = (
        f"CRL point preset (U-maze, {preset.train.num_envs} envs × {preset.train.unroll_length} "
        f"steps, {preset.train.sgd_steps} SGD steps of the batch, width "
        f"{preset.learner.critic_width}) at each depth and batch, one seed. iteration = one "
        "compiled `advance` call (collect + learn); collect, sample (the iteration's `sgd_steps` "
        "batches) and update (`sgd_steps` learner updates on one batch) are separate programs; "
        f"evaluate = one evaluation / eval_every ({preset.run.eval_every}); compile = the "
        "first `advance` call (compilation and the warm-up) / the run's iterations. "
        "Percentages are of iteration + evaluate + compile; other = iteration − collect − "
        "sample − update (what fusing them saves or costs)."
    )
    save_table("profile", "Where a training iteration's time goes", rows, notes)


if __name__ == "__main__":
    main()
