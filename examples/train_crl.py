"""Train deep contrastive RL in an MJX maze.

    python examples/train_crl.py point                          # point mass, U-maze, CPU
    python examples/train_crl.py point --learner.critic-depth 16
    python examples/train_crl.py point --run.num-seeds 10       # ten seeds at once
    python examples/train_crl.py ant --env.layout u4_maze       # the Ant mazes, for a GPU

Every field of the configuration is a flag (`--help` lists them with their documentation).
The run writes `metrics.jsonl`/`metrics.csv`, checkpoints, `learning_curve.png`,
`value_heatmap.png` and `trajectories.png` into `--run.out-dir`; rerunning the same command
resumes an interrupted run.
"""

import dataclasses

from deepcrl.crl import CRL, CRLConfig
from deepcrl.envs import MazeConfig
from deepcrl.train import RunConfig, TrainConfig
from deepcrl.train._cli import train_main


@dataclasses.dataclass(frozen=True)
class Args:
    """A training run: the learner, the maze, the training schedule and the run's outputs."""

    learner: CRLConfig
    """Networks, losses and optimisers."""
    env: MazeConfig
    """The training maze and its evaluation maze."""
    train: TrainConfig
    """Collection, replay and updates."""
    run: RunConfig
    """Budget, seeds, evaluation schedule and outputs."""


PRESETS = {
    "point": (
        "Point mass in the U-maze on CPU (minutes on 2 cores): trained from the start cell on "
        "chained goals drawn within ±1 of the goal cells' centres, evaluated on the far goals' "
        "centres. Depth 8: at depth 4 the farthest goal fails in a third of the seeds; spread "
        "goals: with centre goals the actor may stop just short of it (examples/point_seeds.py).",
        Args(
            learner=CRLConfig(
                actor_depth=8,
                critic_depth=8,
                actor_width=128,
                critic_width=128,
                actor_lr=3e-4,
                critic_lr=1e-3,
                alpha_lr=1e-3,
                lr_schedule="cosine",
                eval_actor_decay=0.998,
            ),
            env=MazeConfig(
                layout="u_maze",
                body="point",
                start_goal="reference",
                chain_goals=0.03,
                episode_length=200,
                goal_noise=1.0,
            ),
            train=TrainConfig(
                num_envs=64,
                unroll_length=50,
                sgd_steps=50,
                batch_size=256,
                buffer_capacity=1000,
            ),
            run=RunConfig(total_env_steps=384_000, eval_every=10, out_dir="runs/point_u_maze"),
        ),
    ),
    "ant": (
        "Ant mazes at the reference scale (512 envs, 1000-step episodes): for a GPU.",
        Args(
            learner=CRLConfig(),
            env=MazeConfig(layout="u4_maze", body="ant", episode_length=1000),
            train=TrainConfig(
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
    train_main(PRESETS, CRL, __doc__)


if __name__ == "__main__":
    main()
