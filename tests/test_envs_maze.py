import math
import subprocess
import sys

import equinox as eqx
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import jax.random as jr
import jaxtyping
import numpy as np
import pytest
from hypothesis import given, settings
from jaxtyping import TypeCheckError

from deepcrl.envs import Layout, Maze, MazeConfig, PointBody, State, get_layout, maze_mjcf
from deepcrl.envs._maze import _stitch_table

from .helpers import tree_allclose

N_ENVS = 16
N_STEPS = 150
EPISODE = 8
# Largest allowed overlap of the agent's sphere (radius 0.5) with a wall, in world units (cells
# are 4 wide): about the displacement per physics substep (0.1 per axis, 0.14 diagonally).
# Measured at most 0.13 over 3 × 256 envs × 300 steps on the hardest maze.
MAX_PENETRATION = 0.15


def _summary(state: State) -> dict:
    """The fields the tests read (not the bulky simulator data)."""
    return dict(
        obs=state.obs,
        goal=state.goal,
        done=state.done,
        steps=state.steps,
        traj_id=state.traj_id,
        reward=state.reward,
        metrics=state.metrics,
    )


def _host(state: State) -> dict:
    return jax.tree.map(np.asarray, _summary(state))


def assert_tree_close(a, b, atol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=atol), a, b)


def make_rollout(env: Maze):
    """`run(key, actions[T, N, 2]) -> (first, traj)`: summaries of the first states and of the
    states after each step, through `lax.scan` (compiled once per env and shape)."""

    @jax.jit
    def run(key, actions):
        first = jax.vmap(env.reset)(jr.split(key, actions.shape[1]))

        def body(state, action):
            state = jax.vmap(env.step)(state, action)
            return state, _summary(state)

        return _summary(first), jax.lax.scan(body, first, actions)[1]

    return lambda key, actions: jax.tree.map(np.asarray, run(key, actions))


@pytest.fixture(scope="module")
def env() -> Maze:
    return Maze("u_maze", episode_length=EPISODE)


@pytest.fixture(scope="module")
def rollout(env):
    return make_rollout(env)


@pytest.fixture(scope="module")
def single(env):
    return jax.jit(env.reset), jax.jit(env.step)


def random_actions(key, n_steps=N_STEPS, n_envs=N_ENVS):
    return jr.uniform(key, (n_steps, n_envs, 2), minval=-1.0, maxval=1.0)


def penetration(layout, radius, xy):
    return np.asarray(jnp.maximum(radius - layout.wall_distance(xy), 0.0))


# ------------------------------------------------------------------------- API basics


def test_sizes(env):
    assert (env.obs_size, env.action_size, env.goal_size) == (4, 2, 2)
    assert env.goal_indices == (0, 1)
    assert env.dt == pytest.approx(0.1)


def test_reset(env, single):
    reset, _ = single
    state = reset(jr.key(0))
    assert isinstance(state, State)
    assert state.obs.shape == (4,) and state.goal.shape == (2,)
    assert int(state.steps) == 0 and int(state.traj_id) == 0 and not bool(state.done)
    # Start: the R cell (1, 1) at (4, 4) plus noise of at most 0.1; at rest.
    np.testing.assert_allclose(state.obs[:2], [4.0, 4.0], atol=0.1 + 1e-6)
    np.testing.assert_array_equal(state.obs[2:], [0.0, 0.0])
    goal_cell = tuple(int(c) for c in get_layout("u_maze").world_to_cell(state.goal))
    assert goal_cell in {tuple(c) for c in get_layout("u_maze").goal_cells.tolist()}


def test_import_is_quiet():
    out = subprocess.run(
        [sys.executable, "-c", "import deepcrl.envs"], capture_output=True, text=True, check=True
    )
    assert out.stdout == ""


def test_one_wall_box_per_wall_cell():
    layout = get_layout("hardest_maze")
    xml = maze_mjcf(layout, PointBody(radius=0.5, max_step=0.5, timestep=0.02, n_substeps=5))
    assert xml.count('<geom name="wall_') == int(layout.walls.sum())


def test_point_moves_at_the_commanded_speed(single):
    reset, step = single
    state = reset(jr.key(1))
    start = state.obs[:2]
    # Along +y from the R cell there is a free corridor: 0.5 per step, unobstructed.
    state = step(state, jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(state.obs[:2] - start, [0.0, 0.5], atol=1e-4)
    np.testing.assert_allclose(state.obs[2:], [0.0, 5.0], atol=1e-3)
    # Actions are clipped to [-1, 1].
    state = step(state, jnp.array([0.0, 7.0]))
    np.testing.assert_allclose(state.obs[:2] - start, [0.0, 1.0], atol=1e-4)


def test_observation_at(env):
    obs = env.observation_at(jnp.array([[4.0, 5.0], [12.0, 8.0]]))
    np.testing.assert_array_equal(obs, [[4.0, 5.0, 0.0, 0.0], [12.0, 8.0, 0.0, 0.0]])
    grid = jnp.zeros((3, 5, 2))
    assert env.observation_at(grid).shape == (3, 5, 4)


def test_filter_jit_takes_the_env_as_an_argument(env):
    @eqx.filter_jit
    def first_obs(env: Maze, key):
        return env.reset(key).obs

    np.testing.assert_allclose(first_obs(env, jr.key(0)), env.reset(jr.key(0)).obs)


# ------------------------------------------------------------------- rollouts and resets


def test_deterministic_given_the_key(rollout):
    actions = random_actions(jr.key(3))
    a = rollout(jr.key(4), actions)
    b = rollout(jr.key(4), actions)
    assert tree_allclose(a, b, rtol=0, atol=0)
    c = rollout(jr.key(5), actions)
    assert not np.allclose(a[1]["goal"], c[1]["goal"])


def test_vmap_matches_a_loop_over_envs(rollout, single):
    reset, step = single
    n_steps = EPISODE + 3  # crosses an automatic reset
    actions = random_actions(jr.key(6))
    first, traj = rollout(jr.key(7), actions)
    keys = jr.split(jr.key(7), N_ENVS)
    for e in range(3):
        state = reset(keys[e])
        assert_tree_close(_host(state), jax.tree.map(lambda x, e=e: x[e], first))
        for t in range(n_steps):
            state = step(state, actions[t, e])
            expected = jax.tree.map(lambda x, t=t, e=e: x[t, e], traj)
            assert_tree_close(_host(state), expected)


def test_auto_reset_gives_fresh_episodes(rollout):
    first, traj = rollout(jr.key(8), random_actions(jr.key(9)))
    done = traj["done"]
    # Episodes end every EPISODE steps: steps cycles 1..EPISODE-1, 0 and traj_id counts resets.
    t = np.arange(1, N_STEPS + 1)
    np.testing.assert_array_equal(done, np.broadcast_to((t % EPISODE == 0)[:, None], done.shape))
    np.testing.assert_array_equal(traj["steps"][:, 0], t % EPISODE)
    np.testing.assert_array_equal(traj["traj_id"][:, 0], t // EPISODE)
    # After a reset: back at the start cell, at rest, with freshly drawn noise and goals.
    reset_obs = traj["obs"][done]
    np.testing.assert_allclose(reset_obs[:, :2], 4.0, atol=0.1 + 1e-5)
    np.testing.assert_array_equal(reset_obs[:, 2:], 0.0)
    starts = np.concatenate([first["obs"][:, :2], reset_obs[:, :2]])
    assert len(np.unique(starts.round(5), axis=0)) == len(starts)  # no cached first state
    layout = get_layout("u_maze")
    goal_cells = np.asarray(layout.world_to_cell(traj["goal"][done]))
    assert {tuple(c) for c in goal_cells.tolist()} == {tuple(c) for c in layout.goal_cells.tolist()}
    for e in range(N_ENVS):  # each env sees several goals
        assert len(np.unique(traj["goal"][:, e], axis=0)) > 1


def test_metrics_describe_the_step(rollout):
    _, traj = rollout(jr.key(10), random_actions(jr.key(11)))
    dist = traj["metrics"]["dist"]
    # Until the step that closes an episode, dist is measured to the unchanged goal.
    not_done = ~traj["done"][1:]
    measured = np.linalg.norm(traj["obs"][1:, :, :2] - traj["goal"][:-1], axis=-1)
    np.testing.assert_allclose(dist[1:][not_done], measured[not_done], rtol=1e-5, atol=1e-5)
    success = traj["metrics"]["success"]
    np.testing.assert_array_equal(success, (dist < 0.5).astype(np.float32))
    np.testing.assert_array_equal(traj["reward"], success)


def test_success_and_time_at_goal(single):
    reset, step = single
    state = reset(jr.key(12))
    xy = state.obs[:2]
    near = eqx.tree_at(lambda s: s.goal, state, xy + jnp.array([0.3, 0.0]))
    far = eqx.tree_at(lambda s: s.goal, state, xy + jnp.array([0.0, 0.6]))
    zero = jnp.zeros(2)
    s1 = step(near, zero)
    assert float(s1.metrics["success"]) == 1.0 and float(s1.reward) == 1.0
    np.testing.assert_allclose(s1.metrics["dist"], 0.3, atol=1e-5)
    s2 = step(s1, zero)
    assert int(s2.metrics["time_at_goal"]) == 2 and int(s2.time_at_goal) == 2
    s3 = step(far, zero)
    assert float(s3.metrics["success"]) == 0.0 and float(s3.reward) == 0.0
    assert int(s3.metrics["time_at_goal"]) == 0


def test_time_at_goal_restarts_with_each_episode(single):
    reset, step = single
    state = reset(jr.key(13))
    state = eqx.tree_at(lambda s: s.goal, state, state.obs[:2])
    totals = []
    for _ in range(EPISODE + 2):
        state = step(state, jnp.zeros(2))
        totals.append(int(state.metrics["time_at_goal"]))
    # Within reach for the whole first episode; the next episode's goal is a G cell far away.
    assert totals[:EPISODE] == list(range(1, EPISODE + 1))
    assert int(state.time_at_goal) == 0 and totals[EPISODE:] == [0, 0]


# --------------------------------------------------------------------- start/goal modes


def _resets(env: Maze, n: int = 2000, seed: int = 0) -> State:
    return jax.jit(jax.vmap(env.reset))(jr.split(jr.key(seed), n))


def test_uniform_mode_covers_free_cells():
    env = Maze("u_maze", start_goal="uniform")
    states = _resets(env)
    layout = env.layout
    start = np.asarray(layout.world_to_cell(states.obs[:, :2]))
    goal = np.asarray(layout.world_to_cell(states.goal))
    assert np.all(np.any(start != goal, axis=1))
    free = {tuple(c) for c in layout.free_cells.tolist()}
    assert {tuple(c) for c in start.tolist()} == free
    assert {tuple(c) for c in goal.tolist()} == free


def test_stitch_mode_draws_each_distance_equally():
    env = Maze("stitch_u_maze", start_goal="stitch", max_goal_distance=3)
    states = _resets(env, n=3000)
    layout = env.layout
    start = np.asarray(layout.world_to_cell(states.obs[:, :2]))
    goal = np.asarray(layout.world_to_cell(states.goal))
    d = np.array([layout.geodesic_distance(a, b) for a, b in zip(start, goal, strict=True)])
    counts = np.bincount(d, minlength=4)
    assert counts[0] == 0 and counts[1:].sum() == 3000
    np.testing.assert_allclose(counts[1:] / 3000, 1 / 3, atol=0.04)


def test_a_stitch_distance_beyond_the_maze_means_any_distance(monkeypatch):
    # The pairs are grouped per distance up to the maze's longest, not up to the bound given:
    # 10**9 would otherwise take hours of empty searches.
    layout = get_layout("u_maze")
    longest = int(layout.distance_table().max())
    calls = []
    pairs_within = Layout.pairs_within

    def counted(*args, **kwargs):
        calls.append(args[1])
        return pairs_within(*args, **kwargs)

    monkeypatch.setattr(Layout, "pairs_within", counted)
    table, counts = _stitch_table(layout, 10**9)
    assert len(calls) == longest == len(counts)
    expected = _stitch_table(layout, longest)
    np.testing.assert_array_equal(table, expected[0])
    np.testing.assert_array_equal(counts, expected[1])


@pytest.mark.parametrize("start_goal", ["uniform", "reference"])
def test_chain_goals_draws_a_new_goal_on_success(start_goal):
    env = Maze("u_maze", start_goal=start_goal, chain_goals=1.0, episode_length=EPISODE)
    states = _resets(env, n=500, seed=3)
    # Every agent is at its goal, so the first step succeeds and chains a new goal.
    at_goal = eqx.tree_at(lambda s: s.goal, states, states.obs[:, :2])
    step = jax.jit(jax.vmap(env.step))  # one compilation for both steps below
    after = step(at_goal, jnp.zeros((500, 2)))
    layout = env.layout
    here = np.asarray(layout.world_to_cell(after.obs[:, :2]))
    goal = np.asarray(layout.world_to_cell(after.goal))
    np.testing.assert_array_equal(after.metrics["success"], 1.0)
    np.testing.assert_array_equal(after.traj_id, states.traj_id)  # the same episode goes on
    assert not np.any(after.done)
    np.testing.assert_allclose(after.goal, layout.cell_to_world(goal))  # cell centres
    expected = layout.reachable_cells if start_goal == "uniform" else layout.goal_cells
    assert {tuple(c) for c in goal.tolist()} == {tuple(c) for c in expected.tolist()}
    if start_goal == "uniform":
        assert np.all(np.any(goal != here, axis=1))
    # Without success the goal stays.
    again = step(after, jnp.zeros((500, 2)))
    kept = np.asarray(again.metrics["success"]) == 0
    assert kept.mean() > 0.5
    np.testing.assert_array_equal(np.asarray(again.goal)[kept], np.asarray(after.goal)[kept])


def test_fixed_goal_and_start():
    env = Maze("u_maze", goal_cell=(3, 1), start_cell=(2, 3), start_noise=0.0)
    states = _resets(env, n=4)
    np.testing.assert_array_equal(states.goal, np.tile([12.0, 4.0], (4, 1)))
    np.testing.assert_array_equal(states.obs[:, :2], np.tile([8.0, 12.0], (4, 1)))
    env = Maze("u_maze", goal_xy=(11.0, 5.5))
    np.testing.assert_array_equal(_resets(env, n=2).goal, [[11.0, 5.5], [11.0, 5.5]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start_goal="uniform", goal_cell=(3, 1)), "start_goal='reference'"),
        (dict(goal_cell=(0, 0)), "goal_cell"),
        (dict(start_cell=(2, 2)), "start_cell"),
        (dict(goal_cell=(3, 1), goal_xy=(1.0, 1.0)), "at most one"),
        (dict(start_noise=1.6), "half a cell"),
        (dict(episode_length=0), "episode_length"),
        (dict(goal_threshold=0.0), "goal_threshold"),
        (dict(start_goal="stitch", max_goal_distance=0), "max_goal_distance"),
        (dict(start_goal="stitch", chain_goals=1.0), "chain_goals"),
        (dict(goal_cell=(3, 1), chain_goals=0.5), "chain_goals"),
        (dict(chain_goals=1.5), "chain_goals"),
        # Settings that would let the body pass through walls, or fail inside MuJoCo's parser.
        (dict(solver_iterations=0), "solver_iterations must be >= 1, got 0"),
        (dict(ls_iterations=-1), "ls_iterations must be >= 1, got -1"),
        (dict(max_contact_points=0), r"max_contact_points must be >= 1, or -1 .* got 0"),
        (dict(max_geom_pairs=-2), r"max_geom_pairs must be >= 1, or -1 .* got -2"),
    ],
)
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Maze("u_maze", **kwargs)


@pytest.mark.usefixtures("without_type_checks")
def test_a_fractional_solver_setting_is_refused_before_mujoco_parses_it():
    # Without the check MuJoCo's XML parser fails on "bad format in attribute 'iterations'".
    with pytest.raises(ValueError, match="solver_iterations must be an integer, got 2.5"):
        Maze("u_maze", solver_iterations=2.5)  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(radius=0.0), "radius must be a finite positive number, got 0.0"),
        (dict(max_step=math.inf), "max_step must be a finite positive number, got inf"),
        (dict(timestep=0.0), "timestep must be a finite positive number, got 0.0"),
        (dict(n_substeps=0), "n_substeps must be an integer >= 1, got 0"),
    ],
)
def test_invalid_point_body(kwargs, match):
    # `max_speed` divides by timestep × n_substeps, first when `step` is traced.
    settings = dict(radius=0.5, max_step=0.5, timestep=0.02, n_substeps=5) | kwargs
    with pytest.raises(ValueError, match=match):
        PointBody(**settings)


@pytest.mark.parametrize("name", ["goal_threshold", "start_noise", "goal_noise", "chain_goals"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_float_options_must_be_finite(name, value):
    # A bare range check (`not x > 0`, `x >= half_cell`) lets inf through.
    with pytest.raises(ValueError, match=f"{name} must be finite, got {value}"):
        Maze("u_maze", **{name: value})


def test_goal_noise_keeps_goals_in_their_cell():
    with pytest.raises(ValueError, match=r"goal_noise \(2.0\) must be below half a cell \(2.0\)"):
        Maze("u_maze", goal_noise=2.0)
    assert Maze("u_maze", goal_noise=1.9).goal_noise == 1.9


@pytest.mark.parametrize("name", ["start_cell", "goal_cell"])
@pytest.mark.parametrize("cell", [(-1, 2), (3, -3), (9, 1), (1, 5)])
def test_cells_off_the_grid_do_not_wrap_around(name, cell):
    # (-1, 2) would index row 4 and (3, -3) column 2: a goal outside the maze.
    match = rf"{name}=\({cell[0]}, {cell[1]}\) lies outside .* shape \(5, 5\)"
    with pytest.raises(ValueError, match=match):
        Maze("u_maze", **{name: cell})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start_cell=(1.5, 2)), r"start_cell must be a cell \(i, j\) of two integers"),
        (dict(goal_cell=(True, 1)), "goal_cell must be a cell"),
        (dict(goal_cell=(1, 2, 3)), "goal_cell must be a cell"),
        (dict(episode_length=2.5), "episode_length must be an integer, got 2.5"),
        (dict(episode_length=math.inf), "episode_length must be an integer, got inf"),
        (dict(start_goal="stitch", max_goal_distance=math.nan), "max_goal_distance.*nan"),
    ],
)
def test_integer_options_are_not_truncated(kwargs, match, monkeypatch):
    # As users run it, without the runtime type checks of the tests (which refuse some of
    # these first); refused in __init__, before the model is built.
    monkeypatch.setattr(jaxtyping.config, "jaxtyping_disable", True)
    with pytest.raises(ValueError, match=match):
        Maze("u_maze", **kwargs)


@pytest.mark.parametrize(
    "goal_xy, match",
    [
        ((-8.0, 4.0), r"outside the 'u_maze' maze, which spans x in \[-2.0, 18.0\]"),
        ((100.0, 4.0), "outside"),
        ((4.0, 2.0), r"wall cell \(1, 0\)"),
        ((0.0, 0.0), r"wall cell \(0, 0\)"),
        ((math.nan, 4.0), r"goal_xy must be finite, got \(nan, 4.0\)"),
        ((4.0, -math.inf), "goal_xy must be finite"),
    ],
)
def test_goal_point_must_lie_in_the_maze(goal_xy, match):
    with pytest.raises(ValueError, match=match):
        Maze("u_maze", goal_xy=goal_xy)


def test_goals_must_be_reachable_from_the_start():
    # (3, 3) is free but walled off from R.
    layout = Layout.from_text("11111 1RG11 11111 11101 11111")
    with pytest.raises(ValueError, match=r"cell \(3, 3\) .* not reachable from the start"):
        Maze(layout, goal_xy=(12.5, 11.0))
    with pytest.raises(ValueError, match=r"goal_cell=\(3, 3\) is not a free cell reachable"):
        Maze(layout, goal_cell=(3, 3))


@pytest.mark.parametrize("name", ["layout", "eval_layout"])
def test_maze_config_refuses_an_unknown_layout(name):
    with pytest.raises(ValueError, match=f"Unknown {name} 'u6_maze'; expected one of"):
        MazeConfig(**{name: "u6_maze"})


def test_unknown_names():
    # Runtime type checking (on in tests) rejects a name outside the Literal before the check.
    with pytest.raises((ValueError, TypeCheckError), match="start_goal"):
        Maze("u_maze", start_goal="nearby")  # pyright: ignore[reportArgumentType]
    with pytest.raises((ValueError, TypeCheckError), match="body"):
        Maze("u_maze", body="snake")  # pyright: ignore[reportArgumentType]


# -------------------------------------------------------------------------- walls hold


@pytest.fixture(scope="module")
def wall_runs(rollout):
    """Per layout, `positions(key, actions[T, N, 2]) -> xy[T, N, 2]`, the position after
    each step, or the first start where the step reset the env (the state then holds the new
    start; the first start is free). The U-maze reuses the module's env (episodes of 8 steps:
    many starts, each pushing into the walls); the hardest maze runs whole episodes.
    """

    def positions(run):
        def xy(key, actions):
            first, traj = run(key, actions)
            # Every example checks the same shape: the wall checks compile once.
            return np.where(traj["done"][..., None], first["obs"][0, :2], traj["obs"][..., :2])

        return xy

    hardest = make_rollout(Maze("hardest_maze", episode_length=N_STEPS + 1))
    return {"u_maze": positions(rollout), "hardest_maze": positions(hardest)}


def _adversarial_actions(key, kind: str):
    """Saturated actions: random corners each step, one fixed corner per env, or a sweep that
    turns by 90 degrees every few steps (pushing along and into walls); or uniform ones."""
    shape = (N_STEPS, N_ENVS, 2)
    if kind == "random_corners":
        return jnp.where(jr.bernoulli(key, 0.5, shape), 1.0, -1.0)
    if kind == "fixed_corner":
        corner = jnp.where(jr.bernoulli(key, 0.5, shape[1:]), 1.0, -1.0)
        return jnp.broadcast_to(corner, shape)
    if kind == "uniform":
        return jr.uniform(key, shape, minval=-1.0, maxval=1.0)
    period = jr.randint(key, (1, N_ENVS, 1), 3, 20)
    angle = (jnp.arange(N_STEPS)[:, None, None] // period).astype(jnp.float32) * (jnp.pi / 2)
    return jnp.concatenate([jnp.cos(angle), jnp.sin(angle)], axis=-1)


@settings(max_examples=4, deadline=None)
@given(
    name=st.sampled_from(["u_maze", "hardest_maze"]),
    kind=st.sampled_from(["random_corners", "fixed_corner", "uniform", "sweep"]),
    seed=st.integers(0, 2**16),
)
def test_walls_hold(wall_runs, name, kind, seed):
    layout = get_layout(name)
    xy = wall_runs[name](jr.key(seed), _adversarial_actions(jr.key(seed + 1), kind))
    assert not bool(jnp.any(layout.in_wall(xy)))
    assert penetration(layout, 0.5, xy).max() < MAX_PENETRATION
