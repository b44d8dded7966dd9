"""Pictures of mazes: top-down layout plots (matplotlib) and rendered episodes (MuJoCo).

Plots show the layout as its text reads: row `i` downwards, column `j` to the right. In world
coordinates (cell `(i, j)` at `(x, y) = (s·i, s·j)`) the vertical axis is world x, pointing
down, and the horizontal axis is world y.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import ArrayLike, Float, UInt8

from ._layout import Layout
from ._layouts import get_layout
from ._mjx import mj_model, mujoco as _mujoco

# The compiled bindings carry no type stubs.
mujoco: Any = _mujoco

Points = Float[ArrayLike, "n 2"] | Sequence[Sequence[float]]
"""World xy points: an `(n, 2)` array or a list of pairs."""

_WALL = "#4d4d59"
_FREE = "#f4f4f0"
_START = "#8fd19e"
_GOAL = "#f2b6b6"


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # matplotlib is an optional dependency
        raise ImportError(
            "Plotting mazes needs matplotlib: `pip install deepcrl[examples]` or "
            "`pip install matplotlib`."
        ) from error
    return plt


def plot_layout(
    layout: str | Layout,
    ax: Any = None,
    *,
    trajectories: Sequence[Float[ArrayLike, "time 2"]] | Float[np.ndarray, "n time 2"] | None = (
        None
    ),
    goals: Points | None = None,
    starts: Points | None = None,
    title: str | None = None,
    cell_labels: bool = False,
) -> Any:
    """Draw a maze from above: walls, start (`R`) and goal (`G`) cells, and optionally
    trajectories and points, all given in world coordinates.

    **Arguments:**

    - `layout`: a [`Layout`][deepcrl.envs.Layout] or a layout name.
    - `ax`: a matplotlib `Axes` to draw on (a new figure's when `None`).
    - `trajectories`: world xy paths, each of shape `(time, 2)`.
    - `goals`, `starts`: world xy points of shape `(n, 2)`, drawn as stars and circles.
    - `title`: the axes' title (the layout's name by default).
    - `cell_labels`: write each free cell's `(i, j)` in it.

    **Returns:** the `Axes`.
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    layout = get_layout(layout) if isinstance(layout, str) else layout
    if ax is None:
        rows, cols = layout.shape
        _, ax = plt.subplots(figsize=(0.5 * cols + 0.6, 0.5 * rows + 0.6))
    codes = np.zeros(layout.shape, dtype=int)
    codes[layout.walls] = 1
    for cells, code in ((layout.goal_cells, 2), (layout.start_cells, 3)):
        codes[tuple(cells.T)] = code
    s = layout.cell_size
    x_min, x_max, y_min, y_max = layout.extent
    ax.imshow(
        codes,
        cmap=ListedColormap([_FREE, _WALL, _GOAL, _START]),
        vmin=0,
        vmax=3,
        extent=(y_min, y_max, x_max, x_min),
        interpolation="nearest",
    )
    if cell_labels:
        for i, j in layout.free_cells.tolist():
            ax.text(s * j, s * i, f"{i},{j}", ha="center", va="center", fontsize=6, alpha=0.6)
    if trajectories is not None:
        for path in trajectories:  # a sequence of paths or an (n, time, 2) array
            xy = np.asarray(path)
            ax.plot(xy[:, 1], xy[:, 0], lw=1.2, alpha=0.8)
    for points, marker, color in ((starts, "o", "#1b7f3b"), (goals, "*", "#c0392b")):
        if points is not None:
            points = np.asarray(points).reshape(-1, 2)
            ax.scatter(points[:, 1], points[:, 0], marker=marker, s=60, c=color, zorder=3)
    ax.set_xlim(y_min, y_max)
    ax.set_ylim(x_max, x_min)
    ax.set_xlabel("world y")
    ax.set_ylabel("world x")
    ax.set_title(layout.name if title is None else title)
    ax.set_aspect("equal")
    return ax


def save_layout_png(layout: str | Layout, path: str | Path, *, dpi: int = 120, **kwargs) -> Path:
    """Plot a layout with [`plot_layout`][deepcrl.envs.plot_layout] (`kwargs` pass through) and
    save it as a PNG file. **Returns:** the path."""
    plt = _pyplot()
    ax = plot_layout(layout, **kwargs)
    path = Path(path)
    ax.figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(ax.figure)
    return path


def render_frames(
    env: Any,
    qpos: Float[ArrayLike, "time nq"],
    goal: Float[ArrayLike, "2"] | None = None,
    *,
    width: int = 320,
    height: int = 320,
) -> UInt8[np.ndarray, "time height width 3"]:
    """Render a top-down view of a maze episode with MuJoCo's OpenGL renderer.

    Needs an OpenGL context: on a machine without a display set `MUJOCO_GL=egl` (or `osmesa`)
    in the environment **before** `mujoco` is first imported.

    **Arguments:**

    - `env`: the [`Maze`][deepcrl.envs.Maze] the episode ran in.
    - `qpos`: the simulator's positions at each frame, e.g. `state.data.qpos` collected from a
      rollout of one env.
    - `goal`: world xy of the goal marker.
    - `width`, `height`: image size in pixels (at most 640 × 480).

    **Returns:** the frames as a `uint8` array.
    """
    from ._maze import maze_mjcf

    model = mj_model(maze_mjcf(env.layout, env.body))
    qpos = np.asarray(qpos, dtype=np.float64)
    data = mujoco.MjData(model)
    goal_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "goal")
    if goal is None:
        model.site_rgba[goal_site, 3] = 0.0
    else:
        model.site_pos[goal_site, :2] = np.asarray(goal, dtype=np.float64)
    renderer = _renderer(model, width, height)
    camera = mujoco.MjvCamera()
    x_min, x_max, y_min, y_max = env.layout.extent
    camera.lookat[:] = ((x_min + x_max) / 2, (y_min + y_max) / 2, 0.0)
    camera.distance = 1.25 * max(x_max - x_min, y_max - y_min)
    # Looking straight down with world x pointing down the image and world y to the right, as
    # the layout's text reads.
    camera.elevation = -90.0
    camera.azimuth = 180.0
    frames = []
    try:
        for q in qpos:
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera)
            frames.append(renderer.render().copy())
    finally:
        renderer.close()
    return np.stack(frames)


def save_gif(
    frames: UInt8[np.ndarray, "time height width 3"], path: str | Path, *, fps: int = 20
) -> Path:
    """Save frames as an animated GIF (with Pillow, which matplotlib installs). **Returns:** the
    path."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("Saving GIFs needs Pillow: `pip install pillow`.") from error
    images = [Image.fromarray(f) for f in np.asarray(frames)]
    path = Path(path)
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
    )
    return path


def _renderer(model: Any, width: int, height: int) -> Any:
    backend = os.environ.get("MUJOCO_GL", "")
    if not backend and not os.environ.get("DISPLAY"):
        raise RuntimeError(
            "No OpenGL context for rendering: there is no display and MUJOCO_GL is not set. "
            "Set MUJOCO_GL=egl (or osmesa) in the environment before mujoco is imported."
        )
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as error:  # the GL backends fail in several ways
        raise RuntimeError(
            f"Could not create an OpenGL context for rendering (MUJOCO_GL={backend!r}): "
            f"{error}. Try MUJOCO_GL=egl or MUJOCO_GL=osmesa (needs libosmesa6)."
        ) from error
