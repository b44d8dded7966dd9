"""Compare finished or interrupted runs: success curves over seeds and a table of where each ended.

    python examples/compare_runs.py runs/a runs/b --labels "depth 4" "depth 8" --out runs/cmp

Reads each run directory's `metrics.jsonl` and `config.json` (nothing is recomputed, so a run
that was stopped early is shown up to where it got, and marked so). Writes `<out>/runs.png`
(evaluation success against env steps: mean over seeds, 95% bootstrap band, one thin line per
seed) and `<out>/runs.md` (per run: the last evaluation's success per seed, its mean and
interval, its difference from the first run's mean with a 95% bootstrap interval of the
difference (an interval that excludes 0 separates the two), the seeds at or above
`--target`, and the worst of the last five evaluations).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from deepcrl.train import load_history, metrics as M, run_ended
from deepcrl.train._cli import bootstrap_interval, difference_text
from deepcrl.train._files import atomic_write_text


def summarise(directory: Path, target: float) -> dict:
    """The last evaluation per seed of the run in `directory`, and how far the run got."""
    history = load_history(directory)
    if not history:
        raise ValueError(f"{directory} has no evaluations in metrics.jsonl")
    config = json.loads((directory / "config.json").read_text())
    per_seed = np.array([M.per_seed(r, M.EVAL_SUCCESS) for r in history])
    last = per_seed[-1]
    low, high = bootstrap_interval(last)
    return {
        "env_steps": history[-1][M.ENV_STEPS],
        "budget": config["run"]["total_env_steps"],
        "finished": run_ended(directory),
        "steps": [r[M.ENV_STEPS] for r in history],
        "curves": per_seed,
        "final": last,
        "mean": float(last.mean()),
        "ci95": (low, high),
        "holding": int((last >= target).sum()),
        "worst_of_last5": per_seed[-5:].min(axis=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--labels", nargs="*", help="one per run (default: directory names)")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    args = parser.parse_args()
    labels = args.labels or [p.name for p in args.runs]
    if len(labels) != len(args.runs):
        raise ValueError(f"{len(labels)} labels for {len(args.runs)} runs")
    if len(set(labels)) != len(labels):  # rows are keyed by label: one would replace another
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(
            f"Labels must be unique, got {twice} more than once; name the runs with --labels."
        )
    if not 0 < args.target <= 1:
        raise ValueError(f"--target is a share of episodes in (0, 1], got {args.target}.")
    runs = zip(labels, args.runs, strict=True)
    rows = {label: summarise(path, args.target) for label, path in runs}
    args.out.mkdir(parents=True, exist_ok=True)
    first = labels[0]
    lines = [
        "| run | env steps | last evaluation: success, mean (95% CI) | difference from "
        f"{first}, points (95% CI) | seeds ≥ {args.target:.0%} | worst of last 5, per seed "
        "| per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        got = f"{r['env_steps']:,}" + ("" if r["finished"] else f" of {r['budget']:,} (stopped)")
        lines.append(
            f"| {label} | {got} | {r['mean']:.1%} ({r['ci95'][0]:.1%}–{r['ci95'][1]:.1%}) | "
            f"{difference_text(r['final'], rows[first]['final']) if label != first else '—'} | "
            f"{r['holding']}/{r['final'].size} | "
            f"{' '.join(f'{x:.0%}' for x in r['worst_of_last5'])} | "
            f"{' '.join(f'{x:.0%}' for x in r['final'])} |"
        )
    table = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "runs.md", table)
    print(table)
    _plot(rows, args.out / "runs.png", args.target, args.title)


def _plot(rows: dict, path: Path, target: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (label, r) in enumerate(rows.items()):
        steps, curves = np.asarray(r["steps"]), r["curves"]
        band = np.array([bootstrap_interval(c) for c in curves])
        n = curves.shape[1]
        ax.plot(steps, curves.mean(axis=1), color=f"C{i}", lw=2, label=f"{label} ({n} seeds)")
        ax.fill_between(steps, band[:, 0], band[:, 1], color=f"C{i}", alpha=0.2)
        ax.plot(steps, curves, color=f"C{i}", lw=0.7, alpha=0.25)
    ax.axhline(target, color="grey", ls=":", lw=1)
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("evaluation success (mean, 95% CI; thin: seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
