"""Stitching: trained only on start-goal pairs at most 3 cells apart, can the agent reach goals
4-6 cells away? The depth work finds that deep networks do and shallow ones do not.

    python examples/stitching.py                      # point U-maze, depths 4-64 (CPU)
    python examples/stitching.py --only d4 d8         # a part of the sweep
    python examples/stitching.py --scale cpu-long     # the same at 2× the env steps, depths 4, 16
    python examples/stitching.py --scale paper        # Ant U4-maze, depths 4-64 (for a GPU)

Training episodes draw a pair of cells 1 to `max_goal_distance` (3) moves apart along the
maze, each distance equally likely (`start_goal="stitch"`), with no goal chaining, so no
training episode runs from the start to a far goal. Evaluation is the preset's: from the `R`
cell to the far goals of the `_eval` layout (4-6 cells away in the U-maze, 7-10 in the
U4-maze). Everything else is the CRL preset of the scale, actor and critic at the same depth.

Every depth is a vmapped multi-seed run in `<out>/<scale>/d<depth>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `stitching.png`.

Then each finished depth's final actor is evaluated again on `EPISODES_PER_SEED` fresh
episodes per seed, and success is split by the goal's distance from the start (cell moves
along the maze): `by_distance.json`, `by_distance.md` and `stitching_by_distance.png`. A
success rate alone cannot tell "reaches the nearest far goal only" from "reaches every goal
sometimes"; this can.
"""

from pathlib import Path

import jax
import numpy as np
import sweep

from deepcrl.train import load_run, seed_keys
from deepcrl.train._cli import bootstrap_interval
from deepcrl.train._files import update_json

EPISODES_PER_SEED = 512

MAX_GOAL_DISTANCE = 3
STITCH = {"start_goal": "stitch", "max_goal_distance": MAX_GOAL_DISTANCE, "chain_goals": 0.0}


def _depths(*depths: int) -> dict:
    return {f"d{d}": {"actor_depth": d, "critic_depth": d} for d in depths}


SCALES = {
    # Depth 64 as built fails on the U-maze preset (its actor starts saturated,
    # `actor_init.py`); with a LayerNorm before the actor's heads it learns the maze.
    "cpu": sweep.Scale(
        "point",
        {"layout": "u_maze", **STITCH},
        5,
        _depths(4, 8, 16, 32)
        | {"d64-head_norm": {"actor_depth": 64, "critic_depth": 64, "actor_head_norm": True}},
        ["actor_depth"],
    ),
    # At the preset's 384k env steps every depth reaches the 4-move goal and neither of the
    # others: twice the env steps tell whether time, given depth or not, stitches further.
    "cpu-long": sweep.Scale(
        "point",
        {"layout": "u_maze", **STITCH, "total_env_steps": 768_000},
        5,
        _depths(4, 16),
        ["actor_depth"],
    ),
    "paper": sweep.Scale(
        "ant", {"layout": "u4_maze", **STITCH}, 10, _depths(4, 16, 64), ["actor_depth"]
    ),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "stitching.png",
        x="actor_depth",
        xlabel="actor and critic depth",
        title=f"Stitching ({scale.common['layout']}): trained on pairs ≤ {MAX_GOAL_DISTANCE} "
        "cells apart, evaluated on the far goals",
    )


def by_distance(
    settings: list[sweep.Setting], out: Path, scale: sweep.Scale, seeds: int
) -> list[dict]:
    """Per finished depth and goal distance: success per seed, over fresh episodes. The
    rows of the settings not analysed now (unfinished, or copied without checkpoints) stay
    in `by_distance.json`; returns every row."""
    rows = []
    for s in settings:
        if not sweep.loadable(s, out):
            continue  # not finished, diverged, or without checkpoints
        run_config = sweep.run_config_of(s, out, seeds)
        state, _ = load_run(s.trainer, run_config)
        rounds = -(-EPISODES_PER_SEED // s.trainer.config.num_eval_envs)
        success, distance = [], []
        for r in range(rounds):  # keys no training evaluation used
            keys = jax.vmap(lambda k, r=r: jax.random.fold_in(k, r))(
                seed_keys(run_config.seed + 2_000_003, seeds)
            )
            episodes = sweep.episodes_per_seed(s.trainer, state, keys)
            success.append(np.asarray(episodes.success, dtype=float))
            distance.append(
                sweep.goal_distances(
                    s.trainer, np.asarray(episodes.start), np.asarray(episodes.goal)
                )
            )
        success, distance = np.concatenate(success, 1), np.concatenate(distance, 1)
        for d in sorted(set(distance.ravel().tolist())):
            # Seeds that drew no goal at this distance (only with few episodes) have no rate.
            per_seed = np.array(
                [success[i][distance[i] == d].mean() for i in range(seeds) if d in distance[i]]
            )
            low, high = bootstrap_interval(per_seed)
            rows.append(
                {
                    "name": s.name,
                    **s.labels,
                    "goal_distance": d,
                    "episodes": int((distance == d).sum()),
                    "success": {"mean": float(per_seed.mean()), "ci95": [low, high]},
                    "per_seed": per_seed.tolist(),
                }
            )
    path = out / "by_distance.json"
    if not rows and not path.exists():
        return rows  # nothing analysed, now or before
    analysed = {r["name"] for r in rows}

    def merge(earlier: list[dict]) -> list[dict]:
        every = [r for r in earlier if r["name"] not in analysed] + rows
        return sorted(every, key=lambda r: (r["actor_depth"], r["name"], r["goal_distance"]))

    rows = update_json(path, merge, empty=[], derived={"by_distance.md": _distance_table})
    if not rows:
        return rows
    print(_distance_table(rows))
    _plot_by_distance(rows, out / "stitching_by_distance.png", scale)
    return rows


def _distance_table(rows: list[dict]) -> str:
    lines = [
        "| actor and critic depth | goal distance (cell moves) | episodes | success, mean "
        "(95% CI) | per seed |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["success"]
        lines.append(
            f"| {r['actor_depth']} | {r['goal_distance']} | {r['episodes']} | "
            f"{s['mean']:.1%} ({s['ci95'][0]:.1%}–{s['ci95'][1]:.1%}) | "
            + " ".join(f"{x:.0%}" for x in r["per_seed"])
            + " |"
        )
    return "\n".join(lines) + "\n"


def _plot_by_distance(rows: list[dict], path: Path, scale: sweep.Scale) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    # One line per setting (depth 64 as built and with the head norm are two), by depth.
    depth_of = {r["name"]: r["actor_depth"] for r in rows}
    names = sorted(depth_of, key=lambda n: (depth_of[n], n))
    for i, name in enumerate(names):
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: r["goal_distance"])
        depth, variant = depth_of[name], name.partition("-")[2].replace("_", " ")
        x = np.array([r["goal_distance"] for r in mine]) + 0.08 * (i - (len(names) - 1) / 2)
        mean = np.array([r["success"]["mean"] for r in mine])
        ci = np.array([r["success"]["ci95"] for r in mine])
        ax.errorbar(
            x,
            mean,
            yerr=[mean - ci[:, 0], ci[:, 1] - mean],
            marker="o",
            capsize=3,
            label=f"depth {depth}" + (f", {variant}" if variant else ""),
        )
        for xi, r in zip(x, mine, strict=True):
            ax.scatter([xi] * len(r["per_seed"]), r["per_seed"], s=8, alpha=0.35, color="gray")
    ax.set_xticks(sorted({r["goal_distance"] for r in rows}))
    ax.axvline(MAX_GOAL_DISTANCE + 0.5, color="black", lw=0.8, ls="--")
    ax.text(MAX_GOAL_DISTANCE + 0.55, 1.02, "trained up to here", fontsize=8, va="bottom")
    ax.set(
        xlabel="goal distance from the start (cell moves)",
        ylabel="success",
        ylim=(-0.03, 1.08),
        title=f"Stitching by goal distance ({scale.common['layout']})",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/stitching", analyse=by_distance)
