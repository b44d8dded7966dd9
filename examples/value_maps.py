"""Value maps (the depth paper's Fig. 9), with a number: does the critic's value follow the maze
(geodesic distance) or the straight line (Euclidean distance) to the goal?

    python examples/value_maps.py                          # depth 4 vs depth 8, 10 seeds each
    python examples/value_maps.py --variants depth4 depth8 preset  # and today's preset
    python examples/value_maps.py --recheck docs/results/*/value_maps.json  # committed maps

Uses the runs of the point seed study (`examples/point_seeds.py`; a variant not trained yet
is trained first, resumably). For every seed, the critic's value `V(s, π(s, g), g)` on a grid
over the evaluation maze for its farthest goal, and the Spearman rank correlation, over the
free grid points, of those values with −geodesic distance (shortest path between free grid
points, 8-connected, no corner cutting) and with −Euclidean distance to the goal. A critic
that has learned the maze ranks states by geodesic distance; one with a Euclidean preference
values the far side of a wall as if it were near.

Writes `<out>/value_maps.json`, `<out>/value_maps.md` and `<out>/value_maps.png` (each
variant's median seed side by side, and every seed's two correlations).
"""

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import point_seeds
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.stats import spearmanr

from deepcrl.envs import Layout, Maze, get_layout
from deepcrl.train import Trainer, TrainState, metrics as M
from deepcrl.train._cli import bootstrap_interval, enable_compilation_cache
from deepcrl.train._files import update_json
from deepcrl.train._plots import draw_walls, farthest_goal, grid_image_extent

RESOLUTION = 64


def grid_geodesic(
    free: np.ndarray, spacing: tuple[float, float], source: tuple[int, int]
) -> np.ndarray:
    """Shortest-path lengths from `source` over the free points of a grid whose first axis
    has spacing `spacing[0]` and second `spacing[1]` (8-connected; a diagonal step needs both
    of its side neighbours free). `inf` where unreachable."""
    n, m = free.shape
    index = np.arange(n * m).reshape(n, m)
    rows, cols, weights = [], [], []
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = free[max(0, -di) : n - max(0, di), max(0, -dj) : m - max(0, dj)]
        i0, j0 = np.nonzero(a)
        i0, j0 = i0 + max(0, -di), j0 + max(0, -dj)
        i1, j1 = i0 + di, j0 + dj
        ok = free[i1, j1]
        if di and dj:  # no corner cutting
            ok &= free[i0 + di, j0] & free[i0, j0 + dj]
        rows.append(index[i0[ok], j0[ok]])
        cols.append(index[i1[ok], j1[ok]])
        weights.append(np.full(ok.sum(), np.hypot(di * spacing[0], dj * spacing[1])))
    r, c, w = (np.concatenate(x) for x in (rows, cols, weights))
    graph = coo_matrix((w, (r, c)), shape=(n * m, n * m)).tocsr()
    return dijkstra(graph, directed=False, indices=index[source]).reshape(n, m)


def grid_over(
    layout: Layout, resolution: int = RESOLUTION
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """A `resolution × resolution` grid over the layout's extent: the points (`resolution ×
    resolution × 2`, float32, first axis along x), which of them are free, and the spacings
    along x and y (equal only on a square maze)."""
    x_min, x_max, y_min, y_max = layout.extent
    xs, ys = np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution)
    points = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).astype(np.float32)
    free = ~np.asarray(layout.in_wall(points.reshape(-1, 2))).reshape(resolution, resolution)
    return points, free, (float(xs[1] - xs[0]), float(ys[1] - ys[0]))


class GoalGrid(NamedTuple):
    """`grid_over`'s grid, and for a goal: its world position, the free grid point nearest
    it (where the geodesic starts) and every point's Euclidean distance to it."""

    points: np.ndarray
    free: np.ndarray
    spacing: tuple[float, float]
    goal_xy: np.ndarray
    source: tuple[int, int]
    euclidean: np.ndarray


def goal_grid(layout: Layout, goal_cell: tuple[int, int]) -> GoalGrid:
    points, free, spacing = grid_over(layout)
    goal_xy = np.asarray(layout.cell_to_world(np.asarray(goal_cell)), np.float32)
    euclidean = np.linalg.norm(points - goal_xy, axis=-1)
    nearest = np.unravel_index(np.argmin(np.where(free, euclidean, np.inf)), free.shape)
    return GoalGrid(points, free, spacing, goal_xy, (int(nearest[0]), int(nearest[1])), euclidean)


def value_maps(variant: str, seeds: int, out: str) -> dict:
    """A seed-study variant's value maps (trained first unless finished)."""
    trainer, _, state, history = point_seeds.trained("crl", variant, seeds, out)
    return value_maps_of(variant, point_seeds.VARIANTS[variant], trainer, state, history)


def value_maps_of(
    name: str, settings: dict, trainer: Trainer, state: TrainState, history: list[dict]
) -> dict:
    """Per seed of a trained run (`state` holds every seed): the value grid for the farthest
    goal and its rank correlations; the median seed's grid is kept for the figure."""
    maze = trainer.eval_env
    if not isinstance(maze, Maze):
        raise ValueError(f"Value maps need a maze to evaluate in, got {type(maze).__name__}.")
    layout = maze.layout
    goal_cell = farthest_goal(layout)
    points, free, spacing, goal_xy, source, euclidean = goal_grid(layout, goal_cell)
    obs = maze.observation_at(jnp.asarray(points.reshape(-1, 2)))
    goal = jnp.broadcast_to(jnp.asarray(goal_xy), (obs.shape[0], 2))
    v = np.asarray(_values(trainer, state, obs, goal)).reshape(-1, RESOLUTION, RESOLUTION)
    geodesic = grid_geodesic(free, spacing, source)
    used = free & np.isfinite(geodesic)
    rho_geo = [_spearman(s[used], -geodesic[used]) for s in v]
    rho_euc = [_spearman(s[used], -euclidean[used]) for s in v]
    median = int(np.argsort(rho_geo)[len(rho_geo) // 2])
    return {
        "variant": name,
        "settings": settings,
        "layout": {"rows": list(layout.rows), "cell_size": layout.cell_size, "name": layout.name},
        "goal_cell": list(goal_cell),
        "points": int(used.sum()),
        "geodesic_vs_euclidean": _spearman(-geodesic[used], -euclidean[used]),
        "rho_geodesic": _distribution(rho_geo),
        "rho_euclidean": _distribution(rho_euc),
        "rho_difference": _distribution(np.subtract(rho_geo, rho_euc)),
        "final_success": [float(x) for x in M.per_seed(history[-1], M.EVAL_SUCCESS)],
        "median_seed": median,
        # The figure's map, null inside walls (as JSON has no NaN).
        "median_map": [
            [round(float(x), 5) if ok else None for x, ok in zip(row, ok_row, strict=True)]
            for row, ok_row in zip(v[median], free, strict=True)
        ],
    }


@eqx.filter_jit
def _values(trainer: Trainer, state: TrainState, obs: jax.Array, goal: jax.Array) -> jax.Array:
    return jax.vmap(lambda s: trainer.values(s, obs, goal))(state)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b)[0])  # pyright: ignore[reportArgumentType]  (scipy stub)


def _distribution(per_seed) -> dict:
    low, high = bootstrap_interval(per_seed)
    return {"mean": float(np.mean(per_seed)), "ci95": [low, high], "per_seed": list(per_seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["depth4", "depth8"],
                        choices=sorted(point_seeds.VARIANTS))  # fmt: skip
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--runs", default="runs/point_seeds", help="the seed study's --out")
    parser.add_argument("--out", default="runs/value_maps")
    parser.add_argument("--recheck", nargs="+", metavar="VALUE_MAPS_JSON",
                        help="only recompute the median seeds' correlations of these files' "
                             "maps on mazes that are not square, and print them")  # fmt: skip
    args = parser.parse_args()
    if args.recheck:
        print(recheck([Path(p) for p in args.recheck]))
        return
    enable_compilation_cache()
    write([value_maps(v, args.seeds, args.runs) for v in args.variants], Path(args.out))


def recheck(paths: list[Path]) -> str:
    """A table, per row of each `value_maps.json` on a maze that is not square: its median
    seed's ρ(V, −geodesic) as stored, recomputed from its stored map with the x spacing on
    both axes (how maps were measured before the geodesic stepped each axis by its own
    spacing) and with each axis's spacing, and the margin over ρ(V, −Euclidean)."""
    lines = [
        "| file | variant | maze | ρ geodesic stored | x spacing only | each axis | "
        "margin stored | margin now | ρ(−geodesic, −Euclidean) stored, now |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        for r in json.loads(path.read_text()):
            if "layout" not in r:  # the seed study's rows, all on the square U-maze
                continue
            layout = get_layout(r["layout"]["name"])
            _, free, spacing, _, source, to_goal = goal_grid(layout, tuple(r["goal_cell"]))
            if spacing[0] == spacing[1]:
                continue
            geodesic = grid_geodesic(free, spacing, source)
            one_spacing = grid_geodesic(free, (spacing[0], spacing[0]), source)
            values = np.array(
                [[np.nan if x is None else x for x in row] for row in r["median_map"]]
            )
            used = free & np.isfinite(geodesic)
            rho = lambda a, b, used=used: _spearman(a[used], -b[used])  # noqa: E731
            seed = r["median_seed"]
            now = rho(values, geodesic)
            lines.append(
                f"| {path.parent.name} | {r['variant']} | {layout.name} | "
                f"{r['rho_geodesic']['per_seed'][seed]:.3f} | {rho(values, one_spacing):.3f} | "
                f"{now:.3f} | {r['rho_difference']['per_seed'][seed]:+.3f} | "
                f"{now - rho(values, to_goal):+.3f} | {r['geodesic_vs_euclidean']:.2f}, "
                f"{_spearman(-geodesic[used], -to_goal[used]):.2f} |"
            )
    return "\n".join(lines) + "\n"


def write(rows: list[dict], out: Path, order: Callable[[dict], Any] | None = None) -> list[dict]:
    """Merge `rows` by name into `<out>/value_maps.json` (rows of other runs stay), then
    write the table `value_maps.md` and the figure `value_maps.png` of every row, sorted
    by `order(row)` when given."""

    def merge(earlier: list[dict]) -> list[dict]:
        merged = {r["variant"]: r for r in earlier}
        merged.update({r["variant"]: r for r in rows})
        return sorted(merged.values(), key=order) if order else list(merged.values())

    every = update_json(out / "value_maps.json", merge, empty=[], derived={"value_maps.md": _table})
    print(_table(every))
    _plot(every, out / "value_maps.png")
    return every


def _table(every: list[dict]) -> str:
    lines = [
        "| variant | ρ(V, −geodesic) | ρ(V, −Euclidean) | difference | per seed: ρ geodesic / "
        "ρ Euclidean / final success |",
        "|---|---|---|---|---|",
    ]
    for r in every:
        cells = [
            f"{r[k]['mean']:.2f} ({r[k]['ci95'][0]:.2f}–{r[k]['ci95'][1]:.2f})"
            for k in ("rho_geodesic", "rho_euclidean", "rho_difference")
        ]
        seeds = zip(r["rho_geodesic"]["per_seed"], r["rho_euclidean"]["per_seed"],
                    r["final_success"], strict=True)  # fmt: skip
        per_seed = ", ".join(f"{g:.2f}/{e:.2f}/{s:.0%}" for g, e, s in seeds)
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + f" | {per_seed} |")
    lines.append(
        f"\nGoal cell {every[0]['goal_cell']}, {every[0]['points']} free grid points; "
        f"ρ(−geodesic, −Euclidean) itself: {every[0]['geodesic_vs_euclidean']:.2f}."
    )
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows) + 1, figsize=(4.6 * (len(rows) + 1), 4.2))
    for ax, r in zip(axes, rows, strict=False):
        layout = Layout(**{**r["layout"], "rows": tuple(r["layout"]["rows"])})
        median = r["median_seed"]
        rho = r["rho_geodesic"]["per_seed"][median]
        goal_xy = np.asarray(layout.cell_to_world(np.asarray(r["goal_cell"])))
        grid = np.array(r["median_map"], dtype=float)  # null → NaN
        im = ax.imshow(grid, extent=grid_image_extent(layout, grid.shape), cmap="viridis")
        draw_walls(ax, layout)
        ax.scatter([goal_xy[1]], [goal_xy[0]], marker="*", s=250, c="red", edgecolors="white")
        ax.set_title(f"{r['variant']}: seed {median} (median ρ geodesic {rho:.2f})")
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[-1]
    for i, r in enumerate(rows):
        for j, key in enumerate(("rho_geodesic", "rho_euclidean")):
            d = r[key]
            x = i + (j - 0.5) * 0.3
            label = key.replace("rho_", "ρ with −") if i == 0 else None
            ax.scatter(np.full(len(d["per_seed"]), x), d["per_seed"], color=f"C{j}", s=14,
                       alpha=0.6, label=label)  # fmt: skip
            ax.errorbar(x, d["mean"], yerr=[[d["mean"] - d["ci95"][0]], [d["ci95"][1] - d["mean"]]],
                        color=f"C{j}", marker="_", ms=16, capsize=4)  # fmt: skip
    ax.set_xticks(range(len(rows)), [r["variant"] for r in rows])
    ax.set_ylabel("Spearman ρ of the value map (per seed)")
    ax.set_ylim(-1.02, 1.02)
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
