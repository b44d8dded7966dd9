"""Training throughput against network depth: env steps/s while collecting, SGD steps/s while
learning, and a whole train iteration, for the point-mass U-maze.

`python -m benchmarks train`; `DEEPCRL_BENCH_QUICK=1` for a smoke run (depth 4 and 8 only).
"""

import dataclasses
import os
import time

import equinox as eqx
import jax
import jax.random as jr

from benchmarks._table import save_table
from deepcrl.crl import CRLConfig, TrainConfig, Trainer

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
DEPTHS = (4, 8) if QUICK else (4, 8, 16, 32, 64)
ON_GPU = jax.devices()[0].platform == "gpu"
BASE = TrainConfig(
    agent=CRLConfig(actor_width=256, critic_width=256),
    episode_length=200,
    num_envs=512 if ON_GPU else 64,
    unroll_length=50,
    sgd_steps=20,
    batch_size=256,
    buffer_capacity=1000,
)


def _best_time(fn, state, repeats: int):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = fn(state)
        jax.block_until_ready((state, metrics))
        best = min(best, time.perf_counter() - start)
    return best, state


def measure(depth: int) -> dict:
    agent = dataclasses.replace(BASE.agent, actor_depth=depth, critic_depth=depth)
    config = dataclasses.replace(BASE, agent=agent)
    trainer = Trainer(config)
    warmup = eqx.filter_jit(Trainer.warmup_iteration)
    train = eqx.filter_jit(Trainer.train_iteration)
    state = eqx.filter_jit(Trainer.init)(trainer, jr.key(0))
    start = time.perf_counter()
    state, _ = warmup(trainer, state)
    jax.block_until_ready(state)
    compile_collect = time.perf_counter() - start
    while int(state.iteration) < trainer.warmup_iterations:
        state, _ = warmup(trainer, state)
    collect_time, state = _best_time(lambda s: warmup(trainer, s), state, 3)
    start = time.perf_counter()
    jax.block_until_ready(train(trainer, state))
    compile_train = time.perf_counter() - start
    iteration_time, state = _best_time(lambda s: train(trainer, s), state, 3)
    sgd_time = max(iteration_time - collect_time, 1e-9)
    return {
        "depth": depth,
        "env steps/s (collect)": config.env_steps_per_iteration / collect_time,
        "SGD steps/s": config.sgd_steps / sgd_time,
        "iteration (s)": iteration_time,
        "compile collect (s)": compile_collect,
        "compile train (s)": compile_train,
    }


def main() -> None:
    rows = [measure(depth) for depth in DEPTHS]
    notes = (
        f"Point mass, U-maze; {BASE.num_envs} envs × {BASE.unroll_length} steps per iteration, "
        f"{BASE.sgd_steps} SGD steps of batch {BASE.batch_size}; actor and critic at the given "
        "depth, width 256. Best of 3 after compilation. SGD steps/s = sgd_steps / (iteration − "
        "collect time)."
    )
    save_table("train", "Training throughput against depth", rows, notes)


if __name__ == "__main__":
    main()
