"""Actor depth × critic depth: the depth work finds that both matter (a shallow critic stays
poor whatever the actor's depth).

    python examples/actor_critic_depth.py                  # point U-maze, 3 × 3 (CPU)
    python examples/actor_critic_depth.py --only a4-c16 a16-c4
    python examples/actor_critic_depth.py --scale cpu-u5   # point U5-maze, 2 × 2 (4, 16)
    python examples/actor_critic_depth.py --scale paper    # Ant U4-maze, 4-64 (for a GPU)

The CRL preset of the scale with every pair of actor and critic depths of the grid.

Every pair is a vmapped multi-seed run in `<out>/<scale>/a<actor>-c<critic>/`, resumable;
finished ones are skipped. Writes `<out>/<scale>/results.json`, `results.md`,
`actor_critic_depth.png` (success against critic depth, and the learning curves),
`actor_critic_grid.png` (the grid: mean success and seeds at 95% or more per pair) and
the critics' value maps for the farthest goal (`value_maps.json`, `.md`, `.png`, as the
depth sweep's) of the pairs it trained.
"""

from pathlib import Path

import depth_sweep
import numpy as np
import sweep

from deepcrl.train import metrics as M


def _grid(depths: tuple[int, ...]) -> dict:
    return {f"a{a}-c{c}": {"actor_depth": a, "critic_depth": c} for a in depths for c in depths}


LABELS = ["actor_depth", "critic_depth"]
SCALES = {
    "cpu": sweep.Scale("point", {}, 5, _grid((4, 8, 16)), LABELS),
    # The maze and budget of the depth sweep's `cpu-u5`, where depth 16 reaches what depth 4
    # does not while both critics draw equally geodesic value maps: which network's depth
    # does it take? Its diagonal pairs are that sweep's d4 and d16 runs (same configuration).
    "cpu-u5": sweep.Scale("point", depth_sweep.SCALES["cpu-u5"].common, 5, _grid((4, 16)), LABELS),
    "paper": sweep.Scale("ant", {"layout": "u4_maze"}, 5, _grid((4, 16, 64)), LABELS),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    maze = f"{scale.preset}, {scale.common.get('layout', 'u_maze')}"
    sweep.plot_against(
        rows,
        out / "actor_critic_depth.png",
        x="critic_depth",
        series="actor_depth",
        xlabel="critic depth",
        title=f"Actor depth × critic depth ({maze})",
    )
    plot_grid(rows, out / "actor_critic_grid.png", scale, f"Final success ({maze})")


def plot_grid(rows: list[dict], path: Path, scale: sweep.Scale, title: str) -> np.ndarray:
    """The grid as the depth paper draws it: actor depth by critic depth, each cell's mean
    final success, with how many seeds reached 95%. Returns the means (rows: actor depths,
    columns: critic depths, ascending); pairs not run yet are NaN, blank in the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = sorted({v for labels in scale.grid.values() for v in labels.values()})
    mean = np.full((len(depths), len(depths)), np.nan)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for r in rows:
        i, j = depths.index(r["actor_depth"]), depths.index(r["critic_depth"])
        seeds = np.asarray(r[M.EVAL_SUCCESS]["per_seed"])
        mean[i, j] = seeds.mean()
        ax.text(j, i, f"{mean[i, j]:.1%}\n{(seeds >= 0.95).sum()}/{seeds.size} ≥ 95%",
                ha="center", va="center", fontsize=9,
                color="black" if mean[i, j] > 0.6 else "white")  # fmt: skip
    image = ax.imshow(mean, origin="lower", vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlabel("critic depth")
    ax.set_ylabel("actor depth")
    fig.colorbar(image, ax=ax, label="final success, mean over seeds")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return mean


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/actor_critic_depth", analyse=depth_sweep.maps)
