"""Value learning as classification, tested on our mazes: the TD learner's critic trained with
HL-Gauss, Two-Hot or MSE, at several critic depths, with contrastive RL at the same depths as
the reference. Seeds run vmapped; every configuration resumes from its own directory and a
finished one is skipped, so the sweep survives interruptions.

    python examples/compare_value_losses.py --scale cpu      # point U-maze
    python examples/compare_value_losses.py --scale paper    # for a GPU: more steps and seeds
    python examples/compare_value_losses.py --depths 4 --learners td-hl_gauss td-mse  # a part

Writes `<out>/<scale>/results.json`, `results.md` (mean and 95% bootstrap interval of the
final success and time at goal per learner and depth, every seed) and
`value_losses-<layout>.png` per maze.
"""

import argparse
import dataclasses
from pathlib import Path

import sweep
import train_crl
import train_td

from deepcrl.crl import CRL
from deepcrl.td import TD
from deepcrl.train import Trainer
from deepcrl.train._cli import enable_compilation_cache

LEARNERS = ("td-hl_gauss", "td-two_hot", "td-mse", "crl")
SCALES = {
    # depths, seeds, env steps per run, layouts
    "cpu": ((4, 16), 5, 600_000, ("u_maze",)),
    "paper": ((4, 16, 64), 10, 3_000_000, ("u_maze", "u4_maze")),
}


def setting(kind: str, depth: int, layout: str, env_steps: int) -> sweep.Setting:
    """One learner (CRL, or TD with the named value loss) at one depth in one maze."""
    deep = {"actor_depth": depth, "critic_depth": depth}
    if kind == "crl":
        args = train_crl.PRESETS["point"][1]
        learner = CRL(dataclasses.replace(args.learner, **deep))
    else:
        args = train_td.PRESETS["point"][1]
        loss = kind.removeprefix("td-")
        learner = TD(dataclasses.replace(args.learner, value_loss=loss, **deep))
    # Both learners in the TD preset's maze (goals at the cell centres), so that only the
    # learner differs.
    env = dataclasses.replace(train_td.PRESETS["point"][1].env, layout=layout)
    trainer = Trainer(learner, env.make(), env.make_eval(), args.train)
    run = dataclasses.replace(args.run, total_env_steps=env_steps, plots=True)
    labels = {"layout": layout, "learner": kind, "depth": depth}
    return sweep.Setting(f"{layout}-{kind}-d{depth}", labels, trainer, run)


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
    settings = [
        setting(kind, depth, layout, steps)
        for layout in layouts
        for depth in depths
        for kind in args.learners
    ]
    sweep.sweep(settings, out, seeds=seeds, order=[s.name for s in settings])
    rows = sweep.read(out)
    print(sweep.table(rows))
    for layout in sorted({r["layout"] for r in rows}):
        sweep.plot_against(
            [r for r in rows if r["layout"] == layout],
            out / f"value_losses-{layout}.png",
            x="depth",
            series="learner",
            xlabel="actor and critic depth",
            title=f"Value losses and CRL ({layout})",
        )


if __name__ == "__main__":
    main()
