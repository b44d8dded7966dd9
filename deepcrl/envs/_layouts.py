"""Named maze layouts.

The `u_maze`, `u4_maze`, `u5_maze`, `big_maze`, `hardest_maze` families and `stitch_u_maze` are the
layouts of the deep contrastive RL / JaxGCRL ant mazes (`_eval` variants move the goal candidates
to the far end). `medium`, `large` and `giant` are the OGBench point/ant maze grids; OGBench
defines five evaluation tasks `(start, goal)` per maze (`OGBENCH_TASKS`). In these layouts `R`
is the first task's start, (1, 1), and the `G` cells are the tasks' other goals: four in each
maze (in `medium` and `giant` one task's goal is (1, 1) itself, in `large` two tasks share one).
"""

from types import MappingProxyType

from ._layout import Layout

_TEXTS = {
    "u_maze": "11111 1RGG1 111G1 1GGG1 11111",
    "u_maze_eval": "11111 1R001 11101 1GGG1 11111",
    "u4_maze": "11111 1GGG1 1R1G1 111G1 1G1G1 1GGG1 11111",
    "u4_maze_eval": "11111 10001 1R101 11101 1G101 1GGG1 11111",
    "u5_maze": "11111111 1GGGGGG1 1R1111G1 111111G1 1G1111G1 1GGGGGG1 11111111",
    "u5_maze_eval": "11111111 10000001 1R111101 11111101 1G1111G1 1GGGGGG1 11111111",
    "big_maze": "11111111 1RG11GG1 1GG1GGG1 11GGG111 1GG1GGG1 1G1GG1G1 1GGG1GG1 11111111",
    # The published code has a variant with `10010GG1` as the third row; this is the other one.
    "big_maze_eval": "11111111 1R011GG1 100100G1 11000111 10010001 101G01G1 10GG1GG1 11111111",
    "hardest_maze": """
        111111111111
        1RGGG1GGGGG1
        1G11G1G1G1G1
        1GGGGGG1GGG1
        1G1111G111G1
        1GG1G1GGGGG1
        11G1G1G1G111
        1GG1GGG1GGG1
        111111111111
    """,
    # Training pairs are 1-3 cells apart (start_goal="stitch"); evaluation goals 4-6 cells away.
    "stitch_u_maze": "11111 1R001 11101 1G001 11111",
}

# OGBench's grids (0 free, 1 wall); `R` and `G` are placed from `OGBENCH_TASKS` below.
_OGBENCH_GRIDS = {
    "medium": """
        11111111
        10011001
        10010001
        11000111
        10010001
        10100101
        10001001
        11111111
    """,
    "large": """
        111111111111
        100001000001
        101101010101
        100000010001
        101111011101
        100101000001
        110101010111
        100100010001
        111111111111
    """,
    "giant": """
        1111111111111111
        1010000001100001
        1010110101001101
        1000100100010001
        1011101111110101
        1000100010000101
        1110101001010111
        1000100100010001
        1010101111110101
        1011100010001101
        1000001000100001
        1111111111111111
    """,
}

OGBENCH_TASKS = MappingProxyType(
    {
        "medium": (
            ((1, 1), (6, 6)),
            ((6, 1), (1, 6)),
            ((5, 3), (4, 2)),
            ((6, 5), (6, 1)),
            ((2, 6), (1, 1)),
        ),
        "large": (
            ((1, 1), (7, 10)),
            ((5, 4), (7, 1)),
            ((7, 4), (1, 10)),
            ((3, 8), (5, 4)),
            ((1, 1), (5, 4)),
        ),
        "giant": (
            ((1, 1), (10, 14)),
            ((1, 14), (10, 1)),
            ((8, 14), (1, 1)),
            ((8, 3), (5, 12)),
            ((5, 9), (3, 8)),
        ),
    }
)
"""OGBench's five evaluation tasks per maze: `((start_i, start_j), (goal_i, goal_j))`."""


def _mark(grid: str, start: tuple[int, int], goals: list[tuple[int, int]]) -> str:
    """`grid` with `R` at `start` and `G` at each of `goals`."""
    rows = [list(r) for r in grid.split()]
    for i, j in goals:
        rows[i][j] = "G"
    rows[start[0]][start[1]] = "R"
    return " ".join("".join(r) for r in rows)


for _name, _grid in _OGBENCH_GRIDS.items():
    _tasks = OGBENCH_TASKS[_name]
    _TEXTS[_name] = _mark(_grid, _tasks[0][0], [goal for _, goal in _tasks])

LAYOUTS: MappingProxyType[str, Layout] = MappingProxyType(
    {name: Layout.from_text(text, name=name) for name, text in _TEXTS.items()}
)
"""Every named layout, by name (cell size 4)."""


def get_layout(name: str, *, cell_size: float | None = None) -> Layout:
    """**Arguments:**

    - `name`: one of the names in `LAYOUTS`.
    - `cell_size`: a different cell size (default: 4, as the reference ant mazes).

    **Returns:** the named [`Layout`][deepcrl.envs.Layout]. An unknown name raises `ValueError`
    listing the known ones.
    """
    if name not in LAYOUTS:
        raise ValueError(f"Unknown layout {name!r}; known layouts: {sorted(LAYOUTS)}.")
    layout = LAYOUTS[name]
    if cell_size is None or cell_size == layout.cell_size:
        return layout
    return Layout(layout.rows, cell_size, name)
