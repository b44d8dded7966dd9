"""Memory of a resume: the peak host memory that reading a run's checkpoint adds, against the
state's size, what a fresh start adds, and reading into a freshly initialised state, for a
run whose state is mostly its replay buffer (as a long run's is). Each measurement is a
fresh process, so peaks do not mix.

`python -m benchmarks resume`; `DEEPCRL_BENCH_QUICK=1` for a smoke run (one small buffer).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax

from benchmarks._table import save_table
from deepcrl.crl import CRL, CRLConfig
from deepcrl.envs import MazeConfig
from deepcrl.train import RunConfig, TrainConfig, Trainer, load_run, run, seed_keys

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
CAPACITIES = (10_000,) if QUICK else (25_000, 100_000)
MAZE = MazeConfig(episode_length=20)


def _setup(capacity: int, out: str) -> tuple[Trainer, RunConfig]:
    train = TrainConfig(
        num_envs=64,
        unroll_length=10,
        sgd_steps=1,
        batch_size=8,
        buffer_capacity=capacity,
        num_eval_envs=4,
    )
    learner = CRL(CRLConfig(actor_width=16, critic_width=16, repr_dim=8))
    trainer = Trainer(learner, MAZE.make(), MAZE.make_eval(), train)
    steps = 4 * train.env_steps_per_iteration
    return trainer, RunConfig(steps, eval_every=2, out_dir=out, progress=False, plots=False)


def _peak_rss_kib() -> int:
    # VmHWM, the peak of this process's own memory: `ru_maxrss` would carry the parent's
    # peak over the fork and exec that started this process.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _child(mode: str, capacity: int, out: str) -> None:
    """Print the state's size and the peak memory that making it added (MiB)."""
    from deepcrl.train._files import checkpoint_dirs, load_checkpoint_state
    from deepcrl.train._run import _for_run, _init

    trainer, rc = _setup(capacity, out)
    before = _peak_rss_kib()
    if mode == "fresh":
        state = _init(trainer, seed_keys(rc.seed, rc.num_seeds))
    elif mode == "resume":
        state, _ = load_run(trainer, rc)
    else:  # read into a freshly initialised state, as resumes did before
        newest = checkpoint_dirs(Path(out))[-1]
        fresh = _init(_for_run(trainer, rc)[0], seed_keys(rc.seed, rc.num_seeds))
        state = load_checkpoint_state(Path(out), newest, fresh)
    state = jax.block_until_ready(state)
    added = _peak_rss_kib() - before
    print(sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20, added / 2**10)


def _measure(mode: str, capacity: int, out: str) -> tuple[float, float]:
    command = [sys.executable, "-m", "benchmarks.bench_resume", mode, str(capacity), out]
    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    state_mib, added_mib = map(float, printed.split()[-2:])
    return state_mib, added_mib


def main() -> None:
    rows = []
    for capacity in CAPACITIES:
        with tempfile.TemporaryDirectory() as out:
            run(*_setup(capacity, out))
            state_mib, fresh = _measure("fresh", capacity, out)
            _, resume = _measure("resume", capacity, out)
            _, into_state = _measure("into-state", capacity, out)
        rows.append(
            {
                "buffer capacity × envs": f"{capacity:,} × 64",
                "state (MiB)": state_mib,
                "fresh start adds (MiB)": fresh,
                "resume adds (MiB)": resume,
                "reading into a fresh state adds (MiB)": into_state,
            }
        )
    save_table(
        "resume",
        "Peak host memory added by a fresh start and by a resume (load_run)",
        rows,
        notes=(
            "Peak resident memory (VmHWM, Linux) of a fresh process, after building the trainer, "
            "minus before; the fixed part is compilation. A resume reads the checkpoint into "
            "the shapes of a state (`eqx.filter_eval_shape`); the last column reads it into a "
            "freshly initialised state instead, which holds a second state meanwhile."
        ),
    )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    else:
        main()
