"""Value learning as classification, tested on our mazes: the TD learner's critic trained with
HL-Gauss, Two-Hot or MSE, at several critic depths, with contrastive RL at the same depths as
the reference. Seeds run vmapped; every configuration resumes from its own directory and a
finished one is skipped, so the sweep survives interruptions.

    python examples/compare_value_losses.py --scale cpu      # point U-maze
    python examples/compare_value_losses.py --scale paper    # for a GPU: more steps and seeds
    python examples/compare_value_losses.py --depths 4 --learners td-hl_gauss td-mse  # a part

Writes `<out>/results.json`, `<out>/results.md` (mean and 95% bootstrap interval of the final
success and time at goal per learner and depth) and `<out>/value_losses.png`.
"""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import train_crl
import train_td

from deepcrl.crl import CRL
from deepcrl.td import TD
from deepcrl.train import RunConfig, Trainer, load_history, metrics as M, run
from deepcrl.train._cli import bootstrap_interval, enable_compilation_cache

LEARNERS = ("td-hl_gauss", "td-two_hot", "td-mse", "crl")
SCALES = {
    # depths, seeds, env steps per run, layouts
    "cpu": ((4, 16), 5, 600_000, ("u_maze",)),
    "paper": ((4, 16, 64), 10, 3_000_000, ("u_maze", "u4_maze")),
}


def trainer_for(kind: str, depth: int, layout: str) -> tuple[Trainer, RunConfig]:
    deep = {"actor_depth": depth, "critic_depth": depth}
    if kind == "crl":
        args = train_crl.PRESETS["point"][1]
        learner = CRL(dataclasses.replace(args.learner, **deep))
    else:
        args = train_td.PRESETS["point"][1]
        loss = kind.removeprefix("td-")
        learner = TD(dataclasses.replace(args.learner, value_loss=loss, **deep))
    env = dataclasses.replace(args.env, layout=layout)
    return Trainer(learner, env.make(), env.make_eval(), args.train), args.run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--out", default="runs/value_losses")
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=LEARNERS)
    parser.add_argument("--depths", nargs="*", type=int, help="instead of the scale's depths")
    parser.add_argument("--layouts", nargs="*", help="instead of the scale's layouts")
    args = parser.parse_args()
    enable_compilation_cache()
    depths, seeds, steps, layouts = SCALES[args.scale]
    depths, layouts = args.depths or depths, args.layouts or layouts
    out = Path(args.out) / args.scale
    results = []
    for layout in layouts:
        for depth in depths:
            for kind in args.learners:
                directory = out / f"{layout}-{kind}-d{depth}"
                if not (directory / "summary.json").exists():
                    trainer, run_config = trainer_for(kind, depth, layout)
                    print(f"== {layout} {kind} depth {depth}: {seeds} seeds × {steps:,} steps")
                    run(
                        trainer,
                        dataclasses.replace(
                            run_config,
                            total_env_steps=steps,
                            num_seeds=seeds,
                            out_dir=str(directory),
                            plots=True,
                        ),
                    )
                results.append(_summarise(layout, kind, depth, load_history(directory)))
                _write(out, results)


def _summarise(layout: str, kind: str, depth: int, history: list[dict]) -> dict:
    final = history[-1]
    row = {"layout": layout, "learner": kind, "depth": depth, "env_steps": final[M.ENV_STEPS]}
    for name in (M.EVAL_SUCCESS, M.EVAL_TIME_AT_GOAL):
        per_seed = np.asarray(M.per_seed(final, name))
        low, high = bootstrap_interval(per_seed)
        row[name] = {
            "mean": float(per_seed.mean()),
            "ci95": [low, high],
            "per_seed": per_seed.tolist(),
        }
    return row


def _write(out: Path, results: list[dict]) -> None:
    """Merge `results` into `<out>/results.json` (a partial sweep keeps the other rows)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    merged = {(r["layout"], r["learner"], r["depth"]): r for r in _read(path) + results}
    results = [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[2], k[1]))]
    path.write_text(json.dumps(results, indent=1))
    lines = [
        "| layout | learner | depth | final success (95% CI) | time at goal (95% CI) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        s, t = r[M.EVAL_SUCCESS], r[M.EVAL_TIME_AT_GOAL]
        lines.append(
            f"| {r['layout']} | {r['learner']} | {r['depth']} | {s['mean']:.0%} "
            f"({s['ci95'][0]:.0%}–{s['ci95'][1]:.0%}) | {t['mean']:.0f} "
            f"({t['ci95'][0]:.0f}–{t['ci95'][1]:.0f}) |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(out, results)


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def _plot(out: Path, results: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layouts = sorted({r["layout"] for r in results})
    fig, axes = plt.subplots(1, len(layouts), figsize=(5.5 * len(layouts), 4), squeeze=False)
    for ax, layout in zip(axes[0], layouts, strict=True):
        for kind in LEARNERS:
            rows = sorted(
                (r for r in results if r["layout"] == layout and r["learner"] == kind),
                key=lambda r: r["depth"],
            )
            if not rows:
                continue
            depth = [r["depth"] for r in rows]
            mean = np.array([r[M.EVAL_SUCCESS]["mean"] for r in rows])
            ci = np.array([r[M.EVAL_SUCCESS]["ci95"] for r in rows])
            ax.errorbar(
                depth, mean, yerr=[mean - ci[:, 0], ci[:, 1] - mean], marker="o", capsize=4,
                label=kind,
            )  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("actor and critic depth")
        ax.set_ylabel("final success (mean, 95% CI over seeds)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(layout)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "value_losses.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
