"""Pictures of a run: learning curve, critic value heatmap and evaluation trajectories.

Axes follow the layout's text: the horizontal axis is world y (columns), the vertical axis
world x (rows, increasing downwards), so a plot looks like the layout as written.
"""

from pathlib import Path
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..envs import Layout, Maze, plot_layout
from . import _metrics as M
from ._files import LEARNING_CURVE, TRAJECTORIES, VALUE_HEATMAP
from ._trainer import Trainer, TrainState


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # optional dependency
        raise ImportError("Plots need matplotlib: pip install 'deepcrl[examples]'.") from e
    return plt


def _image_extent(layout: Layout) -> tuple[float, float, float, float]:
    x_min, x_max, y_min, y_max = layout.extent
    return (y_min, y_max, x_max, x_min)


def grid_image_extent(
    layout: Layout, resolution: int | tuple[int, int]
) -> tuple[float, float, float, float]:
    """`imshow`'s extent for values sampled at `linspace(min, max, resolution)` along x
    (rows) and y (columns): the extent is the pixels' outer edges, so it reaches half a
    spacing past the first and last points, and each pixel is centred on its point."""
    rx, ry = (resolution, resolution) if isinstance(resolution, int) else resolution
    x_min, x_max, y_min, y_max = layout.extent
    hx, hy = (x_max - x_min) / (rx - 1) / 2, (y_max - y_min) / (ry - 1) / 2
    return (y_min - hy, y_max + hy, x_max + hx, x_min - hx)


def draw_walls(ax: Any, layout: Layout) -> None:
    """Wall cells in grey, free space transparent."""
    walls = np.where(layout.walls, 1.0, np.nan)
    ax.imshow(
        walls,
        extent=_image_extent(layout),
        cmap="Greys",
        vmin=0,
        vmax=1.4,
        interpolation="nearest",
        zorder=2,
    )
    ax.set_xlabel("y")
    ax.set_ylabel("x")
    ax.set_aspect("equal")


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Evaluation success and time at goal against environment steps (per-seed spread
    shaded), and the critic loss where the learner reports one."""
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    steps = np.array([r["env_steps"] for r in history])
    panels = [(M.EVAL_SUCCESS, "success rate"), (M.EVAL_TIME_AT_GOAL, "time at goal (steps)")]
    if all(M.CRITIC_LOSS in r for r in history):
        panels.append((M.CRITIC_LOSS, "critic loss"))
    fig, axes = plt.subplots(1, len(panels), figsize=(13 * len(panels) / 3, 3.6))
    for ax, (name, label) in zip(axes, panels, strict=True):
        values = np.array([r[name] for r in history], dtype=np.float64)
        ax.plot(steps, values, lw=2)
        spread = [r.get(name + M.PER_SEED) for r in history]
        if all(s is not None for s in spread):
            spread = np.array(spread)
            ax.fill_between(steps, spread.min(1), spread.max(1), alpha=0.25)
        ax.set_xlabel("environment steps")
        # 200k, 1.5M, ... instead of long tick labels that run into each other.
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def value_grid(
    trainer: Trainer, state: TrainState, goal_xy: Any, resolution: int = 120
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Critic values `V(s, π(s, g), g)` on a grid over the maze (NaN inside walls), entry
    [i, j] at `(xs[i], ys[j])` with `xs`, `ys` = `linspace` over the layout's extent, and the
    image extent that centres each pixel on its point."""
    env = _maze(trainer)
    layout = env.layout
    x_min, x_max, y_min, y_max = layout.extent
    xs = np.linspace(x_min, x_max, resolution)
    ys = np.linspace(y_min, y_max, resolution)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    obs = env.observation_at(jnp.asarray(grid))
    goal = jnp.broadcast_to(jnp.asarray(goal_xy, jnp.float32), grid.shape)
    values = eqx.filter_jit(lambda t, s, o, g: t.values(s, o, g))(trainer, state, obs, goal)
    values = np.where(np.asarray(layout.in_wall(grid)), np.nan, np.asarray(values))
    return values.reshape(resolution, resolution), grid_image_extent(layout, resolution)


def farthest_goal(layout: Layout) -> tuple[int, int]:
    """The goal cell farthest from the start along the maze (where geometry matters most)."""
    goals = [(int(i), int(j)) for i, j in layout.goal_cells]
    return max(goals, key=lambda c: layout.geodesic_distance(layout.start_cell, c))


def value_heatmap(trainer: Trainer, state: TrainState, path: Path, goal_cell: Any = None) -> None:
    """The critic's value map for one goal: it should follow corridors, not straight lines."""
    plt = _pyplot()
    layout = _maze(trainer).layout
    goal_cell = farthest_goal(layout) if goal_cell is None else goal_cell
    goal_xy = np.asarray(layout.cell_to_world(np.asarray(goal_cell)))
    values, extent = value_grid(trainer, state, goal_xy)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(values, extent=extent, cmap="viridis", interpolation="nearest")
    draw_walls(ax, layout)
    start_xy = np.asarray(layout.cell_to_world(np.asarray(layout.start_cell)))
    ax.scatter(
        [goal_xy[1]],
        [goal_xy[0]],
        marker="*",
        s=250,
        c="red",
        edgecolors="white",
        zorder=3,
        label="goal",
    )
    ax.scatter(
        [start_xy[1]],
        [start_xy[0]],
        marker="o",
        s=80,
        c="white",
        edgecolors="black",
        zorder=3,
        label="start",
    )
    fig.colorbar(im, ax=ax, label="critic value V(s, π(s,g), g)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{type(trainer.learner).__name__} values for goal cell {tuple(goal_cell)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def trajectories_plot(
    trainer: Trainer, path: Path, episodes: tuple[Any, Any] | None = None, *, state: Any = None
) -> None:
    """Evaluation episodes of the deterministic actor, drawn over the maze: `episodes` as
    recorded by `Trainer.evaluate` (xy, goals), or new ones of `state`."""
    plt = _pyplot()
    layout = _maze(trainer).layout
    if episodes is None:
        evaluate = eqx.filter_jit(lambda t, s, k: t.evaluate(s, k, record=8))
        _, (xy, goals) = evaluate(trainer, state, jr.key(0))
    else:
        xy, goals = episodes
    xy, goals = np.asarray(xy), np.asarray(goals)
    fig, ax = plt.subplots(figsize=(5, 5))
    plot_layout(layout, ax, title="evaluation trajectories (stars: goals)")
    colours = plt.get_cmap("tab10")
    for k in range(xy.shape[0]):
        ax.plot(xy[k, :, 1], xy[k, :, 0], color=colours(k % 10), lw=1.5, alpha=0.8, zorder=3)
        ax.scatter(
            [goals[k, 1]],
            [goals[k, 0]],
            marker="*",
            s=160,
            color=colours(k % 10),
            edgecolors="black",
            zorder=4,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_run_plots(
    trainer: Trainer,
    state: TrainState,
    history: list[dict[str, Any]],
    out: Path,
    episodes: tuple[Any, Any] | None = None,
) -> None:
    """Write `learning_curve.png`, and for mazes `value_heatmap.png` and `trajectories.png`
    (from the recorded evaluation `episodes` when given), into `out`."""
    learning_curve(history, out / LEARNING_CURVE)
    if not isinstance(trainer.eval_env, Maze):
        return
    value_heatmap(trainer, state, out / VALUE_HEATMAP)
    trajectories_plot(trainer, out / TRAJECTORIES, episodes, state=state)


def _maze(trainer: Trainer) -> Maze:
    if not isinstance(trainer.eval_env, Maze):
        raise TypeError(f"Maze plots need a Maze evaluation env, got {type(trainer.eval_env)}.")
    return trainer.eval_env
