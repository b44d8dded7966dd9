"""Training throughput against network depth, per learner: env steps/s while collecting, SGD
steps/s while learning, a whole iteration, and compile times; plus the compile time of one
whole learner update (actor, critics, targets) at depth 4 and 1024.

`python -m benchmarks train`; `DEEPCRL_BENCH_QUICK=1` for a smoke run (depth 4 and 8 only).
"""

import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from benchmarks._table import save_table
from deepcrl.crl import CRL, CRLConfig
from deepcrl.envs import MazeConfig
from deepcrl.td import TD, TDConfig
from deepcrl.train import Batch, TrainConfig, Trainer

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
DEPTHS = (4, 8) if QUICK else (4, 16, 64)
ON_GPU = jax.devices()[0].platform == "gpu"
MAZE = MazeConfig(episode_length=200)
TRAIN = TrainConfig(
    num_envs=512 if ON_GPU else 64,
    unroll_length=50,
    sgd_steps=20,
    batch_size=256,
    buffer_capacity=1000,
)
LEARNERS = {
    "CRL": lambda depth: CRL(CRLConfig(actor_depth=depth, critic_depth=depth)),
    "TD (HL-Gauss)": lambda depth: TD(TDConfig(actor_depth=depth, critic_depth=depth)),
}


def _timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return time.perf_counter() - start, out


def measure(name: str, depth: int) -> dict:
    trainer = Trainer(LEARNERS[name](depth), MAZE.make(), MAZE.make_eval(), TRAIN)
    advance = eqx.filter_jit(
        lambda t, s, n, learn: t.advance(s, n, learn), donate="all-except-first"
    )
    state = eqx.filter_jit(lambda t, k: t.init(k))(trainer, jr.key(0))
    warm = jnp.asarray(trainer.warmup_iterations)
    compile_s, (state, _) = _timed(advance, trainer, state, warm, jnp.asarray(False))
    collect_s, (state, _) = _timed(advance, trainer, state, jnp.asarray(3), jnp.asarray(False))
    _, (state, _) = _timed(advance, trainer, state, jnp.asarray(1), jnp.asarray(True))
    iteration_s, (state, _) = _timed(advance, trainer, state, jnp.asarray(3), jnp.asarray(True))
    collect_s, iteration_s = collect_s / 3, iteration_s / 3
    return {
        "learner": name,
        "depth": depth,
        "env steps/s (collect)": TRAIN.env_steps_per_iteration / collect_s,
        "SGD steps/s": TRAIN.sgd_steps / max(iteration_s - collect_s, 1e-9),
        "iteration (s)": iteration_s,
        "compile (s)": compile_s,
    }


def update_compile(name: str, depth: int) -> float:
    """Seconds to compile one learner update (no environment) at this depth, width 256."""
    learner = LEARNERS[name](depth)
    state = eqx.filter_eval_shape(
        lambda k: learner.init(k, obs_size=4, goal_size=2, action_size=2), jr.key(0)
    )
    n = 256
    batch = Batch(
        obs=jnp.zeros((n, 4)),
        action=jnp.zeros((n, 2)),
        goal=jnp.zeros((n, 2)),
        next_obs=jnp.zeros((n, 4)),
        reward=jnp.zeros((n,)),
    )
    update = jax.jit(lambda s, b, k: learner.update(s, b, k))
    start = time.perf_counter()
    update.lower(state, batch, jr.key(0)).compile()
    return time.perf_counter() - start


def main() -> None:
    rows = [measure(name, depth) for name in LEARNERS for depth in DEPTHS]
    notes = (
        f"Point mass, U-maze; {TRAIN.num_envs} envs × {TRAIN.unroll_length} steps per "
        f"iteration, {TRAIN.sgd_steps} SGD steps of batch {TRAIN.batch_size}; actor and critic "
        "at the given depth, width 256. Times per iteration from 3 iterations in one compiled "
        "call (`Trainer.advance`); SGD steps/s = sgd_steps / (iteration − collect time); "
        "compile = the first call (collection, learning and the warm-up in one program)."
    )
    save_table("train", "Training throughput against depth", rows, notes)
    compile_rows = []
    for name in LEARNERS:
        shallow, deep = update_compile(name, 4), update_compile(name, 1024)
        compile_rows.append(
            {
                "learner": name,
                "compile depth 4 (s)": shallow,
                "compile depth 1024 (s)": deep,
                "ratio": deep / shallow,
            }
        )
    save_table(
        "train-compile",
        "Compile time of one whole learner update, depth 4 vs 1024",
        compile_rows,
        "`jax.jit(learner.update).lower(...).compile()`, width 256, batch 256: actor, critic(s), "
        "temperature and (TD) target critics. The residual stacks are scanned, so depth adds "
        "no code to compile.",
    )


if __name__ == "__main__":
    main()
