"""Goal-conditioned mazes simulated with MuJoCo MJX.

Cell `(i, j)` of a layout (row `i` from the top, column `j` from the left) is centred at world
`(x, y) = (s·i, s·j)`, `s` the cell size (4 by default).
"""

from ._bodies import (
    AbstractBody as AbstractBody,
    AntBody as AntBody,
    PointBody as PointBody,
)
from ._goal_env import (
    AbstractGoalEnv as AbstractGoalEnv,
    AbstractGoalEnvState as AbstractGoalEnvState,
)
from ._layout import Layout as Layout
from ._layouts import LAYOUTS as LAYOUTS, OGBENCH_TASKS as OGBENCH_TASKS, get_layout as get_layout
from ._maze import Maze as Maze, State as State, make_body as make_body, maze_mjcf as maze_mjcf
from ._maze_config import MazeConfig as MazeConfig
from ._render import (
    plot_layout as plot_layout,
    render_frames as render_frames,
    save_gif as save_gif,
    save_layout_png as save_layout_png,
)
