"""Maze layouts: a grid of wall and free cells, its geometry and a breadth-first-search oracle.

A layout is text, one row per line from top to bottom: `1` wall, `0` free, `R` start cell,
`G` goal candidate (`R` and `G` cells are free). Every cell is a square of side `cell_size`.

**Coordinates.** Cell `(i, j)` (row `i` from the top, column `j` from the left) has its centre at
world `(x, y) = (s·i, s·j)` with `s = cell_size`: world x grows down the rows of the text and
world y along the columns. A wall cell is a box covering `[s·i − s/2, s·i + s/2] ×
[s·j − s/2, s·j + s/2]`, so a point lies in cell `round(x / s), round(y / s)`.
"""

import collections
import dataclasses
import functools
import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._checks import as_integer

_WALL, _FREE, _START, _GOAL = "1", "0", "R", "G"
_CHARS = frozenset(_WALL + _FREE + _START + _GOAL)
# Moves between edge-adjacent cells: the agent cannot cut a wall corner diagonally.
_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))

Cell = tuple[int, int]
CellLike = Sequence[int] | Int[np.ndarray, "2"] | Int[Array, "2"]
"""A cell `(i, j)`: a pair of ints or an int array of shape `(2,)`."""


def _parse_rows(text_or_rows: str | Sequence[str]) -> tuple[str, ...]:
    """Rows from a multi-line (or whitespace-separated) string, or from a sequence of strings."""
    if isinstance(text_or_rows, str):
        rows = text_or_rows.split()
    else:
        rows = [str(r).strip() for r in text_or_rows]
    return tuple(r.replace(" ", "") for r in rows if r.strip())


@dataclasses.dataclass(frozen=True)
class Layout:
    """An immutable, hashable maze layout (usable as a static configuration in `jit`).

    Build one with [`Layout.from_text`][deepcrl.envs.Layout.from_text] or take a named one from
    [`get_layout`][deepcrl.envs.get_layout]. Construction validates the text and raises a
    `ValueError` naming the problem: a cell size that is not finite and positive, rows of
    unequal length, an unknown character, a free cell on the border, no `R` cell or more than
    one, no `G` cell, a start with no free neighbour, a goal cell unreachable from the start.

    Cell `(i, j)` is centred at world `(x, y) = (cell_size·i, cell_size·j)`.

    Geometry helpers ([`cell_to_world`][deepcrl.envs.Layout.cell_to_world],
    [`world_to_cell`][deepcrl.envs.Layout.world_to_cell], [`in_wall`][deepcrl.envs.Layout.in_wall])
    are `jax.numpy` functions usable on batches of points inside `jit`. The search oracle
    ([`distances`][deepcrl.envs.Layout.distances],
    [`shortest_path`][deepcrl.envs.Layout.shortest_path], ...) is NumPy, computed once per
    layout and cached; [`distance_table`][deepcrl.envs.Layout.distance_table] exposes the
    all-pairs table as a `jax` array for on-device sampling.
    """

    rows: tuple[str, ...]
    cell_size: float = 4.0
    name: str = "custom"

    def __post_init__(self):
        object.__setattr__(self, "rows", _parse_rows(self.rows))
        object.__setattr__(self, "cell_size", float(self.cell_size))
        _validate(self.rows, self.cell_size)
        unreachable = [c for c in self._cells_of(_GOAL) if self._reach_from_start[c] < 0]
        if unreachable:
            raise ValueError(f"Goal cells {unreachable} are unreachable from the start cell.")

    @classmethod
    def from_text(
        cls, text_or_rows: str | Sequence[str], *, cell_size: float = 4.0, name: str = "custom"
    ) -> "Layout":
        """**Arguments:**

        - `text_or_rows`: the rows, top to bottom, as one string (rows separated by newlines or
          spaces) or a sequence of strings. Characters: `1` wall, `0` free, `R` start,
          `G` goal candidate.
        - `cell_size`: side of a cell in world units (4.0 as the reference ant mazes).
        - `name`: a label for printing and plots.

        **Returns:** the validated `Layout`.
        """
        return cls(_parse_rows(text_or_rows), cell_size, name)

    def __repr__(self) -> str:
        return f"Layout(name={self.name!r}, shape={self.shape}, cell_size={self.cell_size})"

    def __str__(self) -> str:
        return "\n".join(self.rows)

    # ---------------------------------------------------------------- grid (NumPy, cached)

    @property
    def shape(self) -> tuple[int, int]:
        """`(rows, columns)` of the grid."""
        return len(self.rows), len(self.rows[0])

    @functools.cached_property
    def walls(self) -> np.ndarray:
        """Boolean `(rows, columns)` grid, `True` on wall cells."""
        return np.array([[c == _WALL for c in row] for row in self.rows], dtype=bool)

    @functools.cached_property
    def free_cells(self) -> np.ndarray:
        """All free cells (`0`, `R` and `G`) as an `(n, 2)` int array of `(i, j)`, row-major."""
        return np.argwhere(~self.walls).astype(np.int32)

    @functools.cached_property
    def reachable_cells(self) -> np.ndarray:
        """The free cells reachable from the start cell, `(n, 2)`, row-major."""
        return np.argwhere(self._reach_from_start >= 0).astype(np.int32)

    @functools.cached_property
    def start_cells(self) -> np.ndarray:
        """The `R` cell(s) as an `(n, 2)` int array."""
        return self._cells_array(_START)

    @functools.cached_property
    def goal_cells(self) -> np.ndarray:
        """The `G` cells as an `(n, 2)` int array."""
        return self._cells_array(_GOAL)

    @property
    def start_cell(self) -> Cell:
        """The single `R` cell."""
        i, j = self.start_cells[0]
        return int(i), int(j)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """World bounding box of the whole grid, walls included: `(x_min, x_max, y_min, y_max)`."""
        s = self.cell_size
        rows, cols = self.shape
        return (-s / 2, s * (rows - 0.5), -s / 2, s * (cols - 0.5))

    def _cells_of(self, char: str) -> list[Cell]:
        return [(i, j) for i, row in enumerate(self.rows) for j, c in enumerate(row) if c == char]

    def _cells_array(self, char: str) -> np.ndarray:
        return np.array(self._cells_of(char), dtype=np.int32).reshape(-1, 2)

    # ------------------------------------------------------------------ geometry (jnp)

    def cell_to_world(self, ij: Int[ArrayLike, "*batch 2"]) -> Float[Array, "*batch 2"]:
        """World `(x, y)` of the centre of cell `(i, j)`: `(s·i, s·j)`."""
        return jnp.asarray(ij, dtype=jnp.float32) * jnp.float32(self.cell_size)

    def world_to_cell(self, xy: Float[ArrayLike, "*batch 2"]) -> Int[Array, "*batch 2"]:
        """The cell `(round(x / s), round(y / s))` containing world point `(x, y)`.

        Points outside the grid give indices outside `[0, rows) × [0, columns)`.
        """
        xy = jnp.asarray(xy, dtype=jnp.float32)
        return jnp.round(xy / jnp.float32(self.cell_size)).astype(jnp.int32)

    def in_wall(self, xy: Float[ArrayLike, "*batch 2"]) -> Bool[Array, "*batch"]:
        """`True` where world point `(x, y)` lies in a wall cell or outside the grid."""
        ij = self.world_to_cell(xy)
        rows, cols = self.shape
        inside = (ij[..., 0] >= 0) & (ij[..., 0] < rows) & (ij[..., 1] >= 0) & (ij[..., 1] < cols)
        i = jnp.clip(ij[..., 0], 0, rows - 1)
        j = jnp.clip(ij[..., 1], 0, cols - 1)
        return ~inside | jnp.asarray(self.walls)[i, j]

    def wall_distance(self, xy: Float[ArrayLike, "*batch 2"]) -> Float[Array, "*batch"]:
        """Distance from world point `(x, y)` to the nearest wall cell (0 inside a wall).

        Exact below half a cell; larger distances are reported as `cell_size / 2`. A sphere of
        radius `r` centred at `xy` overlaps a wall by `max(0, r − wall_distance(xy))`.
        """
        xy = jnp.asarray(xy, dtype=jnp.float32)
        s = jnp.float32(self.cell_size)
        # Walls further than half a cell lie outside the 3×3 block of cells around the point.
        offsets = jnp.array([(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)], dtype=jnp.int32)
        offsets = offsets.reshape((1,) * (xy.ndim - 1) + offsets.shape)
        cells = self.world_to_cell(xy)[..., None, :] + offsets
        gap = jnp.maximum(jnp.abs(xy[..., None, :] - cells.astype(jnp.float32) * s) - s / 2, 0.0)
        dist = jnp.where(
            self.in_wall(cells.astype(jnp.float32) * s), jnp.linalg.norm(gap, axis=-1), s
        )
        return jnp.minimum(jnp.min(dist, axis=-1), s / 2)

    # --------------------------------------------------------------- search oracle (NumPy)

    @functools.cached_property
    def cell_index(self) -> np.ndarray:
        """`(rows, columns)` int grid: the index of each free cell in `free_cells`, −1 on walls."""
        index = np.full(self.shape, -1, dtype=np.int32)
        index[tuple(self.free_cells.T)] = np.arange(len(self.free_cells), dtype=np.int32)
        return index

    @functools.cached_property
    def _all_pairs(self) -> np.ndarray:
        """`(n_free, n_free)` geodesic distances in cells between free cells; −1 if unreachable."""
        table = np.stack([_bfs(self.walls, (int(i), int(j))) for i, j in self.free_cells])
        table = table[:, self.free_cells[:, 0], self.free_cells[:, 1]]
        table.setflags(write=False)
        return table

    @functools.cached_property
    def _reach_from_start(self) -> np.ndarray:
        return _bfs(self.walls, self._cells_of(_START)[0])

    def _index(self, cell: CellLike) -> int:
        i, j = (int(c) for c in cell)
        rows, cols = self.shape
        if not (0 <= i < rows and 0 <= j < cols) or self.walls[i, j]:
            raise ValueError(f"Cell {(i, j)} is not a free cell of the {self.shape} layout.")
        return int(self.cell_index[i, j])

    def distances(self, from_cell: CellLike) -> np.ndarray:
        """**Arguments:**

        - `from_cell`: a free cell `(i, j)`.

        **Returns:** a `(rows, columns)` int array of geodesic distances (in cells, moving between
        edge-adjacent free cells) from `from_cell`; −1 on walls and unreachable cells.
        """
        out = np.full(self.shape, -1, dtype=np.int32)
        out[tuple(self.free_cells.T)] = self._all_pairs[self._index(from_cell)]
        return out

    def geodesic_distance(self, a: CellLike, b: CellLike) -> int:
        """Number of cell moves on a shortest path from free cell `a` to `b` (−1 if unreachable)."""
        return int(self._all_pairs[self._index(a), self._index(b)])

    def shortest_path(self, a: CellLike, b: CellLike) -> list[Cell]:
        """A shortest path from `a` to `b` as a list of cells, both ends included.

        Raises `ValueError` if `a` or `b` is not a free cell of the grid, or if `b` is
        unreachable from `a`. Ties are broken in the order
        down, up, right, left, so the path is deterministic.
        """
        to_b = self.distances(b)
        self._index(a)  # a ValueError for a wall or a cell off the grid (no wrap-around)
        i, j = (int(c) for c in a)
        if to_b[i, j] < 0:
            raise ValueError(f"Cell {tuple(b)} is unreachable from {(i, j)}.")
        path = [(i, j)]
        while to_b[i, j] > 0:
            i, j = next(
                (i + di, j + dj) for di, dj in _MOVES if to_b[i + di, j + dj] == to_b[i, j] - 1
            )
            path.append((i, j))
        return path

    def cells_at_distance(self, from_cell: CellLike, k: int) -> np.ndarray:
        """The free cells exactly `k` moves from `from_cell`, an `(n, 2)` int array."""
        if as_integer("k", k) < 0:  # -1 marks walls and unreachable cells in `distances`
            raise ValueError(f"k must be >= 0, got {k}.")
        return np.argwhere(self.distances(from_cell) == k).astype(np.int32)

    def pairs_within(self, max_distance: int, *, min_distance: int = 1) -> np.ndarray:
        """All ordered pairs of free cells `min_distance ≤ d ≤ max_distance` moves apart.

        **Returns:** an `(n, 2, 2)` int array: `pairs[n, 0]` is the first cell, `pairs[n, 1]` the
        second.
        """
        a, b = np.nonzero((self._all_pairs >= min_distance) & (self._all_pairs <= max_distance))
        return np.stack([self.free_cells[a], self.free_cells[b]], axis=1)

    def distance_table(self) -> Int[Array, "n_free n_free"]:
        """The all-pairs geodesic distance table as a `jax` array (indices follow `free_cells`;
        map a cell to its index with `cell_index`), −1 for unreachable pairs."""
        return jnp.asarray(self._all_pairs)


def _validate(rows: tuple[str, ...], cell_size: float) -> None:
    # `not > 0` alone lets inf through, and world coordinates are float32.
    if not (math.isfinite(cell_size) and cell_size > 0):
        raise ValueError(f"cell_size must be finite and > 0, got {cell_size}.")
    if len(rows) < 3:
        raise ValueError(f"A layout needs at least 3 rows, got {len(rows)}.")
    widths = sorted({len(r) for r in rows})
    if len(widths) > 1:
        raise ValueError(f"Layout rows must have equal lengths, got lengths {widths}.")
    unknown = sorted({c for r in rows for c in r} - _CHARS)
    if unknown:
        raise ValueError(f"Unknown layout characters {unknown}; use 1 (wall), 0, R, G.")
    n_rows, n_cols = len(rows), widths[0]
    if cell_size * max(n_rows, n_cols) > float(np.finfo(np.float32).max):
        raise ValueError(
            f"cell_size={cell_size} puts the {n_rows}×{n_cols} grid beyond float32's range."
        )
    open_border = [
        (i, j)
        for i, row in enumerate(rows)
        for j, c in enumerate(row)
        if c != _WALL and (i in (0, n_rows - 1) or j in (0, n_cols - 1))
    ]
    if open_border:
        raise ValueError(f"The border must be walls; free border cells: {open_border}.")
    starts = [(i, j) for i, row in enumerate(rows) for j, c in enumerate(row) if c == _START]
    if len(starts) != 1:
        raise ValueError(f"A layout needs exactly one start cell R, got {len(starts)}.")
    if not any(_GOAL in row for row in rows):
        raise ValueError("A layout needs at least one goal cell G.")
    i, j = starts[0]
    if all(rows[i + di][j + dj] == _WALL for di, dj in _MOVES):
        raise ValueError(f"The start cell {(i, j)} is walled in (no free neighbour).")


def _bfs(walls: np.ndarray, source: Cell) -> np.ndarray:
    """Breadth-first distances (in moves between edge-adjacent free cells) from `source`."""
    dist = np.full(walls.shape, -1, dtype=np.int32)
    dist[source] = 0
    queue = collections.deque([source])
    while queue:
        i, j = queue.popleft()
        for di, dj in _MOVES:
            n = (i + di, j + dj)
            # The border is all walls (validated), so neighbours never leave the grid.
            if not walls[n] and dist[n] < 0:
                dist[n] = dist[i, j] + 1
                queue.append(n)
    return dist
