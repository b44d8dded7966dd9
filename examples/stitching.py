"""Stitching: trained only on start-goal pairs at most 3 cells apart, can the agent reach goals
4-6 cells away? The depth work finds that deep networks do and shallow ones do not.

    python examples/stitching.py                      # point U-maze, depths 4, 8, 16 (CPU)
    python examples/stitching.py --depths 4 8         # a part of the sweep
    python examples/stitching.py --scale paper        # Ant U4-maze, depths 4-64 (for a GPU)

Training episodes draw a pair of cells 1 to `max_goal_distance` (3) moves apart along the
maze, each distance equally likely (`start_goal="stitch"`), with no goal chaining, so no
training episode runs from the start to a far goal. Evaluation is the preset's: from the `R`
cell to the far goals of the `_eval` layout (4-6 cells away in the U-maze). Everything else
is the CRL preset of the scale, actor and critic at the same depth.

Every depth is a vmapped multi-seed run in `<out>/<scale>/d<depth>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `stitching.png`.
"""

import argparse
from pathlib import Path

import sweep
import train_crl

from deepcrl.crl import CRL
from deepcrl.train._cli import enable_compilation_cache

SCALES = {
    # preset, layout, depths, seeds, env steps
    "cpu": ("point", "u_maze", (4, 8, 16), 5, 448_000),
    "paper": ("ant", "u4_maze", (4, 16, 64), 10, 50_000_000),
}
MAX_GOAL_DISTANCE = 3


def settings(scale: str, depths: list[int] | None = None) -> list[sweep.Setting]:
    preset_name, layout, scale_depths, _, steps = SCALES[scale]
    preset = train_crl.PRESETS[preset_name][1]
    return [
        sweep.setting(
            f"d{depth}",
            {"depth": depth},
            preset,
            CRL,
            {
                "actor_depth": depth,
                "critic_depth": depth,
                "layout": layout,
                "start_goal": "stitch",
                "max_goal_distance": MAX_GOAL_DISTANCE,
                "chain_goals": 0.0,
                "total_env_steps": steps,
            },
        )
        for depth in depths or scale_depths
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--depths", type=int, nargs="*", help="instead of the scale's depths")
    parser.add_argument("--seeds", type=int, help="instead of the scale's seeds")
    parser.add_argument("--out", type=Path, default=Path("runs/stitching"))
    args = parser.parse_args()
    enable_compilation_cache()
    _, layout, _, seeds, _ = SCALES[args.scale]
    out = args.out / args.scale
    sweep.sweep(settings(args.scale, args.depths), out, seeds=args.seeds or seeds)
    rows = sweep.read(out)
    print(sweep.table(rows))
    sweep.plot_against(
        rows,
        out / "stitching.png",
        x="depth",
        xlabel="actor and critic depth",
        title=f"Stitching ({layout}): trained on pairs ≤ {MAX_GOAL_DISTANCE} cells apart, "
        "evaluated on far goals",
    )


if __name__ == "__main__":
    main()
