"""Stitching: trained only on start-goal pairs at most 3 cells apart, can the agent reach goals
4-6 cells away? The depth work finds that deep networks do and shallow ones do not.

    python examples/stitching.py                      # point U-maze, depths 4, 8, 16 (CPU)
    python examples/stitching.py --only d4 d8         # a part of the sweep
    python examples/stitching.py --scale paper        # Ant U4-maze, depths 4-64 (for a GPU)

Training episodes draw a pair of cells 1 to `max_goal_distance` (3) moves apart along the
maze, each distance equally likely (`start_goal="stitch"`), with no goal chaining, so no
training episode runs from the start to a far goal. Evaluation is the preset's: from the `R`
cell to the far goals of the `_eval` layout (4-6 cells away in the U-maze, 7-10 in the
U4-maze). Everything else is the CRL preset of the scale, actor and critic at the same depth.

Every depth is a vmapped multi-seed run in `<out>/<scale>/d<depth>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `stitching.png`.
"""

from pathlib import Path

import sweep

MAX_GOAL_DISTANCE = 3
STITCH = {"start_goal": "stitch", "max_goal_distance": MAX_GOAL_DISTANCE, "chain_goals": 0.0}


def _depths(*depths: int) -> dict:
    return {f"d{d}": {"actor_depth": d, "critic_depth": d} for d in depths}


SCALES = {
    "cpu": sweep.Scale(
        "point", {"layout": "u_maze", **STITCH}, 5, _depths(4, 8, 16), ["actor_depth"]
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


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/stitching")
