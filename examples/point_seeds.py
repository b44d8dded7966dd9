"""The point preset over many seeds: the distribution of its final success, and what holds it.

    python examples/point_seeds.py                        # CRL point preset, 10 seeds
    python examples/point_seeds.py --variant depth4       # actor and critic at depth 4
    python examples/point_seeds.py --learner td           # the TD learner's preset

Trains every seed of a variant of the `point` preset at once (vmapped, resumable: rerunning
continues, a finished variant is skipped), then evaluates each seed's final state again under
several evaluation rules: the deterministic actor (`eval_candidates=1`, the preset's own
evaluation) and the best of K actions by the critic's value. Each rule runs on the keys of the
run's last evaluation (so its number is what the run would have logged with that rule) and on
fresh keys, `--eval-keys` sets of episodes in all.

Also evaluates the actor itself instead of its running average (`eval_actor_decay`), and
prints, per seed, the recorded episodes of the run's last evaluation that missed their
goal: the goal's cell and where the episode ended.

Writes `<out>/<learner>-<variant>/` (the run: metrics, checkpoints, learning curve with every
seed) and `<out>/results.json`, `<out>/results.md`, `<out>/point_seeds.png`.
"""

import argparse
import dataclasses
from pathlib import Path

import equinox as eqx
import jax.random as jr
import numpy as np
import sweep
import train_crl
import train_td

from deepcrl.crl import CRL
from deepcrl.envs import Maze
from deepcrl.td import TD
from deepcrl.train import (
    RunConfig,
    Trainer,
    eval_keys,
    evaluate_seeds,
    load_run,
    metrics as M,
    run,
    run_ended,
)
from deepcrl.train._cli import bootstrap_interval, enable_compilation_cache
from deepcrl.train._files import update_json

LEARNERS = {"crl": (train_crl.PRESETS, CRL), "td": (train_td.PRESETS, TD)}
VARIANTS = {
    # learner settings (and `MazeConfig`, `RunConfig` fields) on top of the preset
    "preset": {},
    # the CRL presets before: depth 4 over 600k env steps, then depth 8 over 448k, both with
    # training goals at their cells' centres
    "depth4": {"actor_depth": 4, "critic_depth": 4, "total_env_steps": 600_000, "goal_noise": 0.0},
    "depth8": {"actor_depth": 8, "critic_depth": 8, "total_env_steps": 448_000, "goal_noise": 0.0},
    # goals within ±1 of their cell's centre at depth 8 over 448k env steps, and at depth 4
    # over the preset's budget
    "goal_noise_448k": {
        "actor_depth": 8, "critic_depth": 8, "total_env_steps": 448_000, "goal_noise": 1.0
    },
    "depth4_goal_noise": {"actor_depth": 4, "critic_depth": 4, "goal_noise": 1.0},
    "depth16": {"actor_depth": 16, "critic_depth": 16},
    "width256": {"actor_width": 256, "critic_width": 256},
}  # fmt: skip
TARGET = 0.95
"""A seed holds when its final success is at least this."""


def variant(learner: str, name: str) -> tuple[Trainer, RunConfig]:
    """The trainer and run config of a variant of the learner's `point` preset."""
    presets, make = LEARNERS[learner]
    return sweep.trainer_of(sweep.with_settings(presets["point"][1], VARIANTS[name]), make)


def trained(learner: str, name: str, seeds: int, out: str):
    """The trainer, run config, final state (every seed) and history of a variant, training
    it first (resumably) unless `<out>/<learner>-<name>/` holds a finished run."""
    trainer, run_config = variant(learner, name)
    run_config = dataclasses.replace(
        run_config, num_seeds=seeds, out_dir=str(Path(out) / f"{learner}-{name}")
    )
    if not run_ended(run_config.out_dir):
        run(trainer, run_config)
    state, history = load_run(trainer, run_config)
    return trainer, run_config, state, history


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--learner", choices=sorted(LEARNERS), default="crl")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="preset")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--eval-candidates", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--eval-keys", type=int, default=4)
    parser.add_argument("--out", default="runs/point_seeds")
    args = parser.parse_args()
    # Checked before training, which can take hours, not after it.
    if args.eval_keys < 1:
        parser.error(f"--eval-keys must be at least 1, got {args.eval_keys}")
    if min(args.eval_candidates) < 1:
        parser.error(f"--eval-candidates must each be at least 1, got {args.eval_candidates}")
    enable_compilation_cache()

    trainer, run_config, state, history = trained(args.learner, args.variant, args.seeds, args.out)
    config = trainer.learner.config
    name = f"{args.learner}-{args.variant}"

    row = {
        "learner": args.learner,
        "variant": args.variant,
        "settings": VARIANTS[args.variant],
        "seeds": args.seeds,
        "eval_keys": args.eval_keys,
        "env_steps": history[-1][M.ENV_STEPS],
        "wall_s": history[-1][M.TIME],
        "logged": _logged(history),
        "episodes": _episodes(trainer, state, eval_keys(run_config, history[-1][M.ITERATION])),
        "eval": {},
    }
    # The averaged evaluation actor against the actor itself, on the run's last keys.
    online = eqx.tree_at(lambda t: t.learner.eval_actor, state, state.learner.actor)
    metrics, _ = evaluate_seeds(trainer, online, eval_keys(run_config, history[-1][M.ITERATION]))
    row["online_actor"] = _distribution(np.asarray(metrics[M.EVAL_SUCCESS]))
    print(f"{name}, the online actor instead of its average: {_line(row['online_actor'])}")
    for seed, episodes in enumerate(row["episodes"]):
        missed = [e for e in episodes if not e["reached"]]
        if missed:
            print(f"seed {seed} misses: " + ", ".join(f"goal {e['goal_cell']} (ends at "
                  f"{e['last_xy']}, {e['last_dist']:.2f} from it)" for e in missed))  # fmt: skip
    for k in args.eval_candidates:
        learner = dataclasses.replace(
            trainer.learner, config=dataclasses.replace(config, eval_candidates=k)
        )
        judged = dataclasses.replace(trainer, learner=learner)
        # The run's own last evaluation (what it would have logged with this rule), then
        # fresh episodes.
        final = eval_keys(run_config, history[-1][M.ITERATION])
        success, time_at_goal = [], []
        for i in range(args.eval_keys):
            keys = final if i == 0 else jr.split(jr.fold_in(jr.key(2024), i), args.seeds)
            metrics, _ = evaluate_seeds(judged, state, keys)
            success.append(np.asarray(metrics[M.EVAL_SUCCESS]))
            time_at_goal.append(np.asarray(metrics[M.EVAL_TIME_AT_GOAL]))
        row["eval"][str(k)] = {
            "final": _distribution(success[0]),
            "success": _distribution(np.mean(success, axis=0)),
            "time_at_goal": _distribution(np.mean(time_at_goal, axis=0)),
        }
        judged_k = row["eval"][str(k)]
        print(f"{name}, best of {k}, the run's last evaluation: {_line(judged_k['final'])}")
        print(f"{name}, best of {k}, {args.eval_keys} evaluations: {_line(judged_k['success'])}")
    _write(Path(args.out), row)


def _episodes(trainer: Trainer, state, keys) -> list[list[dict]]:
    """Per seed, the episodes that the run's last evaluation recorded: the goal's cell,
    whether it was reached, and where the episode ended (the way a seed fails)."""
    maze = trainer.eval_env
    assert isinstance(maze, Maze)
    _, (xy, goals) = evaluate_seeds(trainer, state, keys)
    xy, goals = np.asarray(xy), np.asarray(goals)
    dist = np.linalg.norm(xy - goals[:, :, None], axis=-1)
    cells = np.asarray(maze.layout.world_to_cell(goals))
    return [
        [
            {
                "goal_cell": cells[s, e].tolist(),
                "reached": bool((dist[s, e] < maze.goal_threshold).any()),
                "last_xy": np.round(xy[s, e, -1].astype(float), 2).tolist(),
                "last_dist": float(dist[s, e, -1]),
            }
            for e in range(xy.shape[1])
        ]
        for s in range(xy.shape[0])
    ]


def _logged(history: list[dict]) -> dict:
    """The run's own evaluations per seed: the final one, the mean and the minimum of the
    last five (a collapse shows in the minimum)."""
    per_seed = np.array([M.per_seed(r, M.EVAL_SUCCESS) for r in history])
    last = per_seed[-5:]
    return {
        "final": _distribution(per_seed[-1]),
        "last5_mean": _distribution(last.mean(axis=0)),
        "last5_min": _distribution(last.min(axis=0)),
        "curve_env_steps": [r[M.ENV_STEPS] for r in history],
        "curve_per_seed": per_seed.T.tolist(),
    }


def _distribution(per_seed: np.ndarray) -> dict:
    low, high = bootstrap_interval(per_seed)
    return {
        "mean": float(np.mean(per_seed)),
        "ci95": [low, high],
        "holding": int(np.sum(per_seed >= TARGET)),
        "per_seed": [float(x) for x in per_seed],
    }


def _line(d: dict) -> str:
    return (
        f"{d['mean']:.1%} ({d['ci95'][0]:.1%}–{d['ci95'][1]:.1%}), {d['holding']}/"
        f"{len(d['per_seed'])} seeds ≥ {TARGET:.0%}; per seed "
        + " ".join(f"{x:.0%}" for x in d["per_seed"])
    )


def _write(out: Path, row: dict) -> None:
    def merge(earlier: list[dict]) -> list[dict]:
        key = (row["learner"], row["variant"])
        return [r for r in earlier if (r["learner"], r["variant"]) != key] + [row]

    rows = update_json(out / "results.json", merge, empty=[], derived={"results.md": _table})
    _plot(out, rows)


def _table(rows: list[dict]) -> str:
    lines = [
        "| learner | variant | evaluation | final success, mean (95% CI) | seeds ≥ 95% | "
        "time at goal | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        evals = [("run's last evaluation", r["logged"]["final"], None)]
        evals.append(("run's worst of last 5", r["logged"]["last5_min"], None))
        for k, e in r["eval"].items():
            rule = f"best of {k}" if k != "1" else "tanh(mean)"
            evals.append((f"{rule}, the run's last evaluation", e["final"], None))
            evals.append(
                (f"{rule}, mean of {r['eval_keys']} evaluations", e["success"], e["time_at_goal"])
            )
        for label, s, t in evals:
            time = "" if t is None else f"{t['mean']:.0f}"
            lines.append(
                f"| {r['learner']} | {r['variant']} | {label} | {s['mean']:.1%} "
                f"({s['ci95'][0]:.1%}–{s['ci95'][1]:.1%}) | {s['holding']}/{len(s['per_seed'])}"
                f" | {time} | {' '.join(f'{x:.0%}' for x in s['per_seed'])} |"
            )
    return "\n".join(lines) + "\n"


def _plot(out: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    # every rule of any row, in one order (rows may have been judged under different rules)
    ks = sorted({k for r in rows for k in r["eval"]}, key=int)
    for i, r in enumerate(rows):
        color = f"C{i}"
        steps = np.asarray(r["logged"]["curve_env_steps"])
        curves = np.asarray(r["logged"]["curve_per_seed"])
        bands = np.array([bootstrap_interval(c) for c in curves.T])
        label = f"{r['learner']} {r['variant']}"
        axes[0].plot(steps, curves.mean(axis=0), color=color, label=label)
        axes[0].fill_between(steps, bands[:, 0], bands[:, 1], color=color, alpha=0.2)
        for c in curves:
            axes[0].plot(steps, c, color=color, alpha=0.15, lw=0.8)
        for j, k in enumerate(ks):
            if k not in r["eval"]:
                continue
            per_seed = np.asarray(r["eval"][k]["success"]["per_seed"])
            x = j + (i - (len(rows) - 1) / 2) * 0.15
            axes[1].scatter(np.full(per_seed.size, x), per_seed, color=color, alpha=0.6, s=14)
            axes[1].errorbar(
                x, per_seed.mean(), yerr=[[per_seed.mean() - r["eval"][k]["success"]["ci95"][0]],
                [r["eval"][k]["success"]["ci95"][1] - per_seed.mean()]], color=color, marker="_",
                ms=14, capsize=4, label=label if k == next(iter(r["eval"])) else None,
            )  # fmt: skip
    ticks = [f"best of {k}" if k != "1" else "tanh(mean)" for k in ks]
    axes[1].set_xticks(range(len(ks)), ticks)
    axes[0].set_xlabel("env steps")
    axes[0].set_ylabel("evaluation success (mean, 95% CI; thin: seeds)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(loc="lower right")
    axes[1].axhline(TARGET, color="grey", ls=":", lw=1)
    axes[1].set_ylabel("final success per seed (re-evaluated)")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "point_seeds.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
