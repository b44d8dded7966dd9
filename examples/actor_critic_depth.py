"""Actor depth × critic depth: the depth work finds that both matter (a shallow critic stays
poor whatever the actor's depth).

    python examples/actor_critic_depth.py                  # point U-maze, 3 × 3 (CPU)
    python examples/actor_critic_depth.py --only a4-c16 a16-c4
    python examples/actor_critic_depth.py --scale paper    # Ant U4-maze, 4-64 (for a GPU)

The CRL preset of the scale with every pair of actor and critic depths of the grid.

Every pair is a vmapped multi-seed run in `<out>/<scale>/a<actor>-c<critic>/`, resumable;
finished ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and
`actor_critic_depth.png`.
"""

from pathlib import Path

import sweep


def _grid(depths: tuple[int, ...]) -> dict:
    return {f"a{a}-c{c}": {"actor_depth": a, "critic_depth": c} for a in depths for c in depths}


LABELS = ["actor_depth", "critic_depth"]
SCALES = {
    "cpu": sweep.Scale("point", {}, 5, _grid((4, 8, 16)), LABELS),
    "paper": sweep.Scale("ant", {"layout": "u4_maze"}, 5, _grid((4, 16, 64)), LABELS),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "actor_critic_depth.png",
        x="critic_depth",
        series="actor_depth",
        xlabel="critic depth",
        title=f"Actor depth × critic depth ({scale.preset}, "
        f"{scale.common.get('layout', 'u_maze')})",
    )


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/actor_critic_depth")
