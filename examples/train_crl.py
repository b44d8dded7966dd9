"""Train deep contrastive RL in an MJX maze.

    python examples/train_crl.py point                       # point mass, U-maze, CPU, minutes
    python examples/train_crl.py point --train.agent.critic-depth 16
    python examples/train_crl.py ant --train.layout u4_maze  # the Ant mazes, for a GPU

Every field of the configuration is a flag (`--help` lists them with their documentation).
The `point` preset decays its learning rates over exactly its 600k env steps; to change
`--run.total-env-steps`, pass the matching `--train.agent.lr-decay-updates` too (a mismatch
that would stop learning early is refused with the value to use).
The run writes `metrics.jsonl`/`metrics.csv`, a resumable checkpoint, `learning_curve.png`,
`value_heatmap.png` and `trajectories.png` into `--run.out-dir`; rerunning the same command
resumes an interrupted run.
"""

import dataclasses
import os
from pathlib import Path

import jax
import tyro

from deepcrl.crl import CRLConfig, RunConfig, TrainConfig, run


@dataclasses.dataclass(frozen=True)
class Args:
    """A training run: what to train (`train`) and how to run it (`run`)."""

    train: TrainConfig
    """Environment, agent and data settings."""
    run: RunConfig
    """Budget, seeds, evaluation schedule and outputs."""


PRESETS = {
    "point": (
        "Point mass in the U-maze on CPU (minutes on 2 cores): trained from the start cell on "
        "chained goals drawn from the goal cells, evaluated on the far goals.",
        Args(
            train=TrainConfig(
                agent=CRLConfig(
                    actor_width=128,
                    critic_width=128,
                    actor_lr=3e-4,
                    critic_lr=1e-3,
                    alpha_lr=1e-3,
                    # Over the whole run: (188 iterations − 4 of warm-up) × 50 SGD steps.
                    lr_decay_updates=9_200,
                    eval_actor_decay=0.998,
                ),
                layout="u_maze",
                body="point",
                start_goal="reference",
                chain_goals=0.03,
                episode_length=200,
                num_envs=64,
                unroll_length=50,
                sgd_steps=50,
                batch_size=256,
                buffer_capacity=1000,
            ),
            run=RunConfig(total_env_steps=600_000, eval_every=10, out_dir="runs/point_u_maze"),
        ),
    ),
    "ant": (
        "Ant mazes at the reference scale (512 envs, 1000-step episodes): for a GPU.",
        Args(
            train=TrainConfig(
                agent=CRLConfig(),
                layout="u4_maze",
                body="ant",
                episode_length=1000,
                num_envs=512,
                unroll_length=62,
                sgd_steps=800,
                batch_size=512,
                buffer_capacity=10_000,
                num_eval_envs=128,
            ),
            run=RunConfig(total_env_steps=50_000_000, eval_every=20, out_dir="runs/ant"),
        ),
    ),
}


def main() -> None:
    args = tyro.extras.overridable_config_cli(PRESETS, description=__doc__)
    # Reruns (and resumed runs) skip most compilation.
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deepcrl" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    print(f"Training on {jax.devices()[0].platform}; outputs in {args.run.out_dir}")
    result = run(args.train, args.run)
    final = result.final
    last = result.history[-5:]
    print(
        f"Final evaluation after {final['env_steps']:,} env steps: "
        f"success {final['eval/success']:.1%}, "
        f"time at goal {final['eval/time_at_goal']:.1f}/{args.train.episode_length} steps "
        f"({final['time']:.0f} s); mean of the last {len(last)} evaluations: success "
        f"{sum(row['eval/success'] for row in last) / len(last):.1%}. "
        f"Plots and metrics in {args.run.out_dir}"
    )


if __name__ == "__main__":
    main()
