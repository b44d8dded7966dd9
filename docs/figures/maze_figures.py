"""Make the maze figures of the docs: `python docs/figures/maze_figures.py`.

- `maze_layouts.png`: every named layout (start cell green, goal candidates red).
- `maze_episode.gif`: the point agent following the breadth-first-search path across the
  U-maze, rendered with MuJoCo (needs an OpenGL context: run with `MUJOCO_GL=egl`).
"""

import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import matplotlib
import numpy as np

from deepcrl.envs import LAYOUTS, Maze, plot_layout, render_frames, save_gif

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def layouts_figure(path: Path) -> None:
    names = list(LAYOUTS)
    cols = 5
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows))
    for ax, name in zip(axes.flat, names, strict=False):
        plot_layout(LAYOUTS[name], ax)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def follow_path(
    env: Maze, goal_cell: tuple[int, int], n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Roll out a controller that heads for the next cell of the shortest path to the goal.

    **Returns:** the simulator's `qpos` at every step and the goal's world xy.
    """
    layout = env.layout
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jr.key(0))
    goal = np.asarray(state.goal)
    qpos = [np.asarray(state.data.qpos)]
    for _ in range(n_steps):
        xy = np.asarray(state.obs[:2])
        cell = tuple(int(c) for c in np.asarray(layout.world_to_cell(xy)))
        path = layout.shortest_path(cell, goal_cell)
        target = layout.cell_to_world(jnp.asarray(path[min(1, len(path) - 1)]))
        action = jnp.clip((target - xy) / 0.5, -1.0, 1.0)  # 0.5: the point's step
        state = step(state, action)
        qpos.append(np.asarray(state.data.qpos))
    return np.stack(qpos), goal


def episode_gif(path: Path) -> None:
    env = Maze("u_maze", goal_cell=(3, 1), episode_length=1000)
    qpos, goal = follow_path(env, (3, 1), n_steps=60)
    save_gif(render_frames(env, qpos, goal, width=240, height=240), path, fps=15)


if __name__ == "__main__":
    layouts_figure(HERE / "maze_layouts.png")
    if os.environ.get("MUJOCO_GL"):
        episode_gif(HERE / "maze_episode.gif")
    else:
        print("MUJOCO_GL is not set: skipping the rendered episode (try MUJOCO_GL=egl).")
