import json
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

from deepcrl.envs import Maze, get_layout, plot_layout, render_frames, save_layout_png

matplotlib.use("Agg")


def test_plot_layout_draws_the_grid_as_text_reads():
    layout = get_layout("u_maze")
    path = np.array([[4.0, 4.0], [4.0, 12.0], [12.0, 12.0]])
    ax = plot_layout(layout, trajectories=[path], goals=[[12.0, 4.0]], starts=[[4.0, 4.0]])
    codes = np.asarray(ax.images[0].get_array())
    # 1 wall, 2 goal candidate, 3 start; rows top to bottom as in the text.
    expected = np.array(
        [[1, 1, 1, 1, 1], [1, 3, 2, 2, 1], [1, 1, 1, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]]
    )
    np.testing.assert_array_equal(codes, expected)
    # World y runs along the horizontal axis, world x down the vertical one.
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), path[:, 1])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), path[:, 0])
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted: x grows downwards
    assert ax.get_title() == "u_maze"
    matplotlib.pyplot.close(ax.figure)


def test_save_layout_png(tmp_path):
    path = save_layout_png("hardest_maze", tmp_path / "maze.png", cell_labels=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotting_without_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="matplotlib"):
        plot_layout("u_maze")


def test_rendering_without_a_display_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl"):
        render_frames(Maze("u_maze"), np.zeros((1, 2)))


_RENDER_SCRIPT = """
import json, numpy as np
from deepcrl.envs import Maze, render_frames, save_gif
env = Maze("u_maze")
qpos = np.array([[4.0, 4.0], [4.0, 8.0], [4.0, 12.0]])
try:
    frames = render_frames(env, qpos, goal=(12.0, 4.0), width=160, height=160)
except RuntimeError as error:
    print(json.dumps({"error": str(error)}))
    raise SystemExit
save_gif(frames, "{gif}", fps=5)
red = (frames[..., 0] > 180) & (frames[..., 1] < 140) & (frames[..., 2] < 140)
blue = (frames[..., 2] > 120) & (frames[..., 0] < 90)
centre = lambda mask: np.argwhere(mask).mean(0).tolist()
print(json.dumps({
    "shape": frames.shape, "dtype": str(frames.dtype),
    "red": [centre(r) for r in red], "blue": [centre(b) for b in blue],
}))
"""


def test_render_episode(tmp_path):
    """Renders in a fresh process with MUJOCO_GL=egl (chosen when mujoco is imported); skips
    where no EGL context can be made."""
    gif = tmp_path / "episode.gif"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run(
        [sys.executable, "-c", _RENDER_SCRIPT.replace("{gif}", str(gif))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in result:
        pytest.skip(f"no OpenGL context here: {result['error']}")
    assert result["shape"] == [3, 160, 160, 3] and result["dtype"] == "uint8"
    assert gif.read_bytes()[:6] == b"GIF89a"
    # Top-down view, text orientation: the goal (cell (3, 1)) sits bottom-left in every frame;
    # the agent moves right along the top row (world y grows to the right).
    for row, col in result["red"]:
        assert row > 80 and col < 80
    rows = [r for r, _ in result["blue"]]
    cols = [c for _, c in result["blue"]]
    assert all(r < 80 for r in rows)
    assert cols[0] < cols[1] < cols[2]
