import equinox as eqx
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

from deepcrl.envs import LAYOUTS, OGBENCH_TASKS, Layout, get_layout

U_MAZE = "11111 1RGG1 111G1 1GGG1 11111"


# ------------------------------------------------------------------------------ parsing


def test_from_text_forms_agree():
    rows = U_MAZE.split()
    a = Layout.from_text(U_MAZE)
    b = Layout.from_text("\n".join(rows))
    c = Layout.from_text(rows)
    assert a == b == c
    assert hash(a) == hash(b)
    assert a.shape == (5, 5)
    assert str(a) == "\n".join(rows)


def test_cells():
    layout = Layout.from_text(U_MAZE)
    assert layout.start_cell == (1, 1)
    np.testing.assert_array_equal(layout.start_cells, [[1, 1]])
    np.testing.assert_array_equal(
        layout.goal_cells, [[1, 2], [1, 3], [2, 3], [3, 1], [3, 2], [3, 3]]
    )
    assert len(layout.free_cells) == 7
    np.testing.assert_array_equal(layout.free_cells, layout.reachable_cells)
    assert layout.walls.sum() == 25 - 7


def test_unreachable_free_cells_are_not_reachable():
    layout = Layout.from_text("11111 1RG11 11111 11101 11111")
    assert len(layout.free_cells) == 3
    np.testing.assert_array_equal(layout.reachable_cells, [[1, 1], [1, 2]])


@pytest.mark.parametrize(
    "rows, match",
    [
        ("11111 1RG1 11111", "equal lengths"),
        ("11111 1RX11 11111", "Unknown layout characters"),
        ("11111 1RG10 11111", "border"),
        ("10111 1RG11 11111", "border"),
        ("11111 10G11 11111", "exactly one start"),
        ("11111 1RGR1 11111", "exactly one start"),
        ("11111 1R001 11111", "goal cell"),
        ("111111 1R1G01 111111", "walled in"),
        ("11111 1R011 11111 11G11 11111", "unreachable"),
        ("11111 1RG11", "at least 3 rows"),
    ],
)
def test_validation_errors(rows, match):
    with pytest.raises(ValueError, match=match):
        Layout.from_text(rows)


@pytest.mark.parametrize("cell_size", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_cell_size(cell_size):
    with pytest.raises(ValueError, match=f"cell_size must be finite and > 0, got {cell_size}"):
        Layout.from_text(U_MAZE, cell_size=cell_size)
    with pytest.raises(ValueError, match="cell_size"):
        get_layout("u_maze", cell_size=cell_size)


def test_cell_size_must_keep_the_grid_in_float32():
    with pytest.raises(ValueError, match=r"cell_size=1e\+38 .* 5×5 grid beyond float32"):
        Layout.from_text(U_MAZE, cell_size=1e38)


def test_named_layouts():
    expected = {
        "u_maze", "u_maze_eval", "u4_maze", "u4_maze_eval", "u5_maze", "u5_maze_eval",
        "big_maze", "big_maze_eval", "hardest_maze", "stitch_u_maze", "medium", "large", "giant",
    }  # fmt: skip
    assert set(LAYOUTS) == expected
    assert get_layout("u_maze") == Layout.from_text(U_MAZE, name="u_maze")
    assert get_layout("hardest_maze").shape == (9, 12)
    assert get_layout("giant").shape == (12, 16)
    assert get_layout("u_maze", cell_size=2.0).cell_size == 2.0
    # The reference big maze and OGBench's medium maze share one grid.
    np.testing.assert_array_equal(get_layout("big_maze").walls, get_layout("medium").walls)


def test_unknown_layout_lists_names():
    with pytest.raises(ValueError, match="u_maze"):
        get_layout("no_such_maze")


@pytest.mark.parametrize("name", sorted(OGBENCH_TASKS))
def test_ogbench_tasks_are_reachable(name):
    layout = get_layout(name)
    for start, goal in OGBENCH_TASKS[name]:
        assert layout.geodesic_distance(start, goal) > 0
    # `R` is the first task's start; the `G` cells are the other goals, four per maze.
    start = OGBENCH_TASKS[name][0][0]
    goals = {goal for _, goal in OGBENCH_TASKS[name]} - {start}
    assert {tuple(c) for c in layout.goal_cells.tolist()} == goals and len(goals) == 4


def test_layout_is_a_static_config():
    layout = get_layout("u_maze")

    @eqx.filter_jit
    def n_free(layout: Layout, x):
        return x + len(layout.free_cells)

    assert int(n_free(layout, jnp.int32(1))) == 8
    # Equal layouts built separately hit the same cache entry.
    assert int(n_free(Layout.from_text(U_MAZE, name="u_maze"), jnp.int32(0))) == 7


# ---------------------------------------------------------------------------- geometry


def test_coordinates_convention():
    layout = get_layout("u_maze")
    np.testing.assert_allclose(layout.cell_to_world(jnp.array([3, 1])), [12.0, 4.0])
    np.testing.assert_array_equal(layout.world_to_cell(jnp.array([12.0, 4.0])), [3, 1])
    # Cell boxes are centred: ±(s/2 - ε) stays in the cell.
    np.testing.assert_array_equal(layout.world_to_cell(jnp.array([13.9, 2.1])), [3, 1])
    assert layout.extent == (-2.0, 18.0, -2.0, 18.0)


@given(i=st.integers(0, 8), j=st.integers(0, 11), dx=st.floats(-1.9, 1.9), dy=st.floats(-1.9, 1.9))
def test_world_to_cell_inverts_cell_to_world(i, j, dx, dy):
    layout = get_layout("hardest_maze")
    xy = layout.cell_to_world(jnp.array([i, j])) + jnp.array([dx, dy], dtype=jnp.float32)
    np.testing.assert_array_equal(layout.world_to_cell(xy), [i, j])
    assert bool(layout.in_wall(xy)) == bool(layout.walls[i, j])


def test_in_wall_on_a_grid_in_jit():
    layout = get_layout("u_maze")
    centres = layout.cell_to_world(
        jnp.stack(jnp.meshgrid(jnp.arange(5), jnp.arange(5), indexing="ij"), -1)
    )
    np.testing.assert_array_equal(jax.jit(layout.in_wall)(centres), layout.walls)
    outside = jnp.array([[-3.0, 4.0], [4.0, 18.5], [100.0, 100.0]])
    assert bool(jnp.all(layout.in_wall(outside)))


def test_wall_distance():
    layout = get_layout("u_maze")
    points = jnp.array([[4.0, 4.0], [5.5, 4.0], [7.0, 4.0], [5.0, 5.0], [5.0, 9.0]])
    # (5.0, 9.0): the nearest wall is cell (2, 2), below at x = 6.
    np.testing.assert_allclose(layout.wall_distance(points), [2.0, 0.5, 0.0, 1.0, 1.0])


# ----------------------------------------------------------------------- search oracle

# Moves from R along the U of u_maze, computed by hand.
U_DISTANCES = np.array(
    [
        [-1, -1, -1, -1, -1],
        [-1, 0, 1, 2, -1],
        [-1, -1, -1, 3, -1],
        [-1, 6, 5, 4, -1],
        [-1, -1, -1, -1, -1],
    ]
)


def test_bfs_distances_u_maze():
    layout = get_layout("u_maze")
    np.testing.assert_array_equal(layout.distances((1, 1)), U_DISTANCES)
    assert layout.geodesic_distance((1, 1), (3, 1)) == 6
    assert layout.geodesic_distance((3, 1), (1, 1)) == 6
    assert layout.geodesic_distance((2, 3), (2, 3)) == 0
    assert layout.shortest_path((1, 1), (3, 1)) == [
        (1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1),
    ]  # fmt: skip
    np.testing.assert_array_equal(layout.cells_at_distance((1, 1), 4), [[3, 3]])
    assert len(layout.cells_at_distance((1, 1), 7)) == 0
    with pytest.raises(ValueError, match="k must be >= 0, got -1"):  # -1 marks the walls
        layout.cells_at_distance((1, 1), -1)


def test_distance_queries_reject_walls():
    layout = get_layout("u_maze")
    with pytest.raises(ValueError, match="not a free cell"):
        layout.distances((0, 0))
    with pytest.raises(ValueError, match="not a free cell"):
        layout.geodesic_distance((1, 1), (9, 9))


@pytest.mark.parametrize("start", [(-4, 1), (-1, -2), (1, 9), (0, 0)])
def test_shortest_path_rejects_cells_off_the_grid_or_in_walls(start):
    # A negative index must not wrap around to a free cell on the far side of the grid.
    with pytest.raises(ValueError, match=rf"Cell \({start[0]}, {start[1]}\) .*\(5, 5\)"):
        get_layout("u_maze").shortest_path(start, (1, 2))


def test_shortest_path_unreachable():
    layout = Layout.from_text("11111 1RG11 11111 11101 11111")
    assert layout.geodesic_distance((1, 1), (3, 3)) == -1
    with pytest.raises(ValueError, match="unreachable"):
        layout.shortest_path((1, 1), (3, 3))


def test_pairs_within():
    layout = get_layout("u_maze")
    # A corridor of 7 cells: 6 ordered pairs at each distance d has 2·(7 − d) ordered pairs.
    for d in range(1, 7):
        assert len(layout.pairs_within(d, min_distance=d)) == 2 * (7 - d)
    pairs = layout.pairs_within(3)
    assert len(pairs) == 2 * (6 + 5 + 4)
    for a, b in pairs:
        assert 1 <= layout.geodesic_distance(a, b) <= 3


@pytest.mark.parametrize("name", ["hardest_maze", "giant"])
def test_distance_table_is_consistent(name):
    layout = get_layout(name)
    table = np.asarray(layout.distance_table())
    n = len(layout.free_cells)
    assert table.shape == (n, n)
    np.testing.assert_array_equal(table, table.T)
    assert np.all(np.diag(table) == 0)
    idx = layout.cell_index
    for i, j in layout.free_cells:
        for di, dj in ((1, 0), (0, 1)):
            if not layout.walls[i + di, j + dj]:
                # Neighbours' distances to any cell differ by at most one move.
                assert np.all(np.abs(table[idx[i, j]] - table[idx[i + di, j + dj]]) <= 1)
    # Triangle inequality through every intermediate cell.
    assert np.all(table[:, None, :] <= table[:, :, None] + table[None, :, :])


@given(data=st.data())
def test_shortest_path_is_a_walk_of_geodesic_length(data):
    layout = get_layout(data.draw(st.sampled_from(["hardest_maze", "large", "u5_maze"])))
    cells = [tuple(int(c) for c in ij) for ij in layout.free_cells]
    a = data.draw(st.sampled_from(cells))
    b = data.draw(st.sampled_from(cells))
    path = layout.shortest_path(a, b)
    assert path[0] == a and path[-1] == b
    assert len(path) == layout.geodesic_distance(a, b) + 1
    for (i, j), (k, m) in zip(path, path[1:], strict=False):
        assert abs(i - k) + abs(j - m) == 1 and not layout.walls[k, m]
