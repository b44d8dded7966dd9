"""The goal-conditioned maze simulator: an MJX model built from a layout, with auto-reset."""

import functools
import math
from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._checks import as_integer
from ._bodies import AbstractBody, AntBody, PointBody
from ._goal_env import AbstractGoalEnv, AbstractGoalEnvState
from ._layout import Layout
from ._layouts import get_layout
from ._mjx import mj_model, mjx, mjx_numerics

StartGoal = Literal["reference", "uniform", "stitch"]
BodyName = Literal["point", "ant"]


class State(AbstractGoalEnvState):
    """The state of one maze environment (`jax.vmap` over keys for many).

    After a step that ends an episode, `obs`, `goal`, `data`, `steps` and `traj_id` already belong
    to the next episode, while `done`, `reward` and `metrics` describe the step that just ended
    the previous one.
    """

    data: mjx.Data
    """The simulator state."""
    obs: Float[Array, " obs"]
    """The observation (the agent's xy at `Maze.goal_indices`)."""
    goal: Float[Array, "2"]
    """The goal position (world xy); it changes within an episode only with `chain_goals`."""
    reward: Float[Array, ""]
    """1.0 when the last step ended within `goal_threshold` of the goal, else 0.0."""
    done: Bool[Array, ""]
    """`True` when the last step ended an episode (this state starts a new one)."""
    steps: Int[Array, ""]
    """Steps taken in the current episode."""
    traj_id: Int[Array, ""]
    """Episode counter of this environment, incremented at every reset."""
    time_at_goal: Int[Array, ""]
    """Steps within the threshold so far in the current episode."""
    key: PRNGKeyArray
    """PRNG key for the next resets."""
    metrics: dict[str, Array]
    """`dist` (to the goal), `success` (1.0 when within the threshold) and `time_at_goal` (steps
    within the threshold in the episode so far, the total when `done`), all for the last step."""


class Maze(AbstractGoalEnv):
    """A goal-conditioned maze simulated with MuJoCo MJX.

    ```python
    env = Maze("u_maze")
    state = jax.jit(env.reset)(key)
    state = jax.jit(env.step)(state, action)   # auto-resets at the end of an episode
    ```

    `reset` and `step` act on one environment; `jax.vmap` them over keys for many. When an
    episode ends (`episode_length` steps, or early termination for the ant) `step` returns the
    first state of a new episode, with a start and goal freshly sampled from the state's own
    key, `traj_id` incremented, `steps` back to 0 and `done=True`.

    Cell `(i, j)` of the layout is centred at world `(x, y) = (s·i, s·j)`, `s` the cell size.
    """

    model: mjx.Model
    body: AbstractBody
    layout: Layout = eqx.field(static=True)
    episode_length: int = eqx.field(static=True)
    start_goal: StartGoal = eqx.field(static=True)
    goal_threshold: float = eqx.field(static=True)
    max_goal_distance: int = eqx.field(static=True)
    start_cell: tuple[int, int] | None = eqx.field(static=True)
    goal_cell: tuple[int, int] | None = eqx.field(static=True)
    goal_xy: tuple[float, float] | None = eqx.field(static=True)
    start_noise: float = eqx.field(static=True)
    goal_noise: float = eqx.field(static=True)
    chain_goals: float = eqx.field(static=True)

    def __init__(
        self,
        layout: str | Layout = "u_maze",
        *,
        body: BodyName | AbstractBody = "point",
        episode_length: int = 1000,
        start_goal: StartGoal = "reference",
        goal_threshold: float = 0.5,
        max_goal_distance: int = 3,
        start_cell: Sequence[int] | None = None,
        goal_cell: Sequence[int] | None = None,
        goal_xy: Sequence[float] | None = None,
        start_noise: float = 0.1,
        goal_noise: float = 0.0,
        chain_goals: float = 0.0,
        solver_iterations: int | None = None,
        ls_iterations: int | None = None,
        max_contact_points: int | None = None,
        max_geom_pairs: int | None = None,
    ):
        """**Arguments:**

        - `layout`: a layout name (see `LAYOUTS`) or a [`Layout`][deepcrl.envs.Layout].
        - `body`: the simulated body: `"point"` (a velocity-commanded sphere), `"ant"` (the
          quadruped), or an instance such as `PointBody(radius=..., max_step=...)`.
        - `episode_length`: steps per episode before the automatic reset.
        - `start_goal`: how each episode's start and goal are drawn.
            - `"reference"`: start at the `R` cell (or `start_cell`), goal a uniformly chosen
              `G` cell (or the fixed `goal_cell` / `goal_xy`).
            - `"uniform"`: start and goal uniform over the free cells reachable from `R`,
              distinct.
            - `"stitch"`: pairs of cells between 1 and `max_goal_distance` moves apart along the
              maze, each distance equally likely, then the pair uniformly among those at that
              distance.
        - `goal_threshold`: success radius around the goal (world units), finite and > 0.
        - `max_goal_distance`: the largest start-goal distance (in cells) for `"stitch"`.
        - `start_cell`: a fixed start cell (all modes but `"uniform"` and `"stitch"`).
        - `goal_cell`, `goal_xy`: a fixed goal, as a cell or a world point (evaluation).
          Cells are pairs of non-negative ints inside the grid (no wrap-around), and cells
          and points must be free and reachable from the `R` cell.
        - `start_noise`: the start is the cell centre plus uniform noise in ±`start_noise` on
          each axis; `start_noise` plus the body's radius must stay below half a cell.
        - `goal_noise`: the same for goals drawn from cells, below half a cell (so a goal
          stays in its cell).
        - `chain_goals`: the probability, at each step that ends at the goal, of drawing a new
          goal and carrying on in the same episode (`"reference"`: a uniformly chosen `G` cell;
          `"uniform"`: a uniformly chosen other reachable cell); 0 never chains. One trajectory
          then strings several start-goal paths together, each ended by a stay at its goal
          (about `1 / chain_goals` steps), which a Monte-Carlo critic needs in order to value
          goals farther than one episode's path. Not with `"stitch"`, whose point is short
          pairs, nor with a fixed goal.
        - `solver_iterations`, `ls_iterations`: constraint-solver and line-search iterations
          (at least 1).
        - `max_contact_points`, `max_geom_pairs`: MJX contact culling (see the guide); at
          least 1, or -1 for no limit.

        The last four default (`None`) to the body's settings.
        """
        layout = get_layout(layout) if isinstance(layout, str) else layout
        body = make_body(body) if isinstance(body, str) else body
        self.layout = layout
        self.body = body
        self.episode_length = as_integer("episode_length", episode_length)
        self.start_goal = start_goal
        self.goal_threshold = float(goal_threshold)
        self.max_goal_distance = as_integer("max_goal_distance", max_goal_distance)
        self.start_cell = None if start_cell is None else _cell("start_cell", start_cell)
        self.goal_cell = None if goal_cell is None else _cell("goal_cell", goal_cell)
        self.goal_xy = None if goal_xy is None else _point("goal_xy", goal_xy)
        self.start_noise = float(start_noise)
        self.goal_noise = float(goal_noise)
        self.chain_goals = float(chain_goals)
        xml = maze_mjcf(
            layout,
            body,
            solver_iterations=solver_iterations,
            ls_iterations=ls_iterations,
            max_contact_points=max_contact_points,
            max_geom_pairs=max_geom_pairs,
        )
        self.model = mjx.put_model(mj_model(xml), impl="jax")

    def __hash__(self) -> int:
        # By identity: the model's arrays are unhashable, and `jax.jit(env.step)` hashes the
        # bound method (so its owner) to cache the compiled function.
        return id(self)

    def __check_init__(self):
        if self.start_goal not in ("reference", "uniform", "stitch"):
            raise ValueError(
                f"start_goal must be 'reference', 'uniform' or 'stitch', got {self.start_goal!r}."
            )
        if self.episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.episode_length}.")
        # Range checks such as `not x > 0` refuse NaN but let inf through: finiteness first.
        floats = dict(
            goal_threshold=self.goal_threshold,
            start_noise=self.start_noise,
            goal_noise=self.goal_noise,
            chain_goals=self.chain_goals,
        )
        for name, value in floats.items():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}.")
        if not self.goal_threshold > 0:
            raise ValueError(f"goal_threshold must be positive, got {self.goal_threshold}.")
        if self.goal_cell is not None and self.goal_xy is not None:
            raise ValueError("Give at most one of goal_cell and goal_xy.")
        fixed = (self.start_cell, self.goal_cell, self.goal_xy)
        if self.start_goal != "reference" and any(f is not None for f in fixed):
            raise ValueError(
                "start_cell, goal_cell and goal_xy need start_goal='reference', "
                f"got start_goal={self.start_goal!r}."
            )
        for name, cell in (("start_cell", self.start_cell), ("goal_cell", self.goal_cell)):
            if cell is not None:
                _check_cell(self.layout, name, cell)
        if self.goal_xy is not None:
            _check_goal_point(self.layout, self.goal_xy)
        half_cell = self.layout.cell_size / 2
        for name, noise in (("start_noise", self.start_noise), ("goal_noise", self.goal_noise)):
            if not noise >= 0:
                raise ValueError(f"{name} must be >= 0, got {noise}.")
        if self.start_noise + self.body.radius >= half_cell:
            raise ValueError(
                f"start_noise + body radius ({self.start_noise} + {self.body.radius}) must be "
                f"below half a cell ({half_cell}) so that starts never touch a wall."
            )
        if self.goal_noise >= half_cell:
            raise ValueError(
                f"goal_noise ({self.goal_noise}) must be below half a cell ({half_cell}) so "
                "that goals drawn in a cell stay in it."
            )
        if not 0.0 <= self.chain_goals <= 1.0:
            raise ValueError(
                f"chain_goals must be a probability in [0, 1], got {self.chain_goals}."
            )
        if self.chain_goals and self.start_goal == "stitch":
            raise ValueError(
                "chain_goals would join stitch pairs into long paths; use it with "
                "start_goal='reference' or 'uniform'."
            )
        if self.chain_goals and (self.goal_cell is not None or self.goal_xy is not None):
            raise ValueError("chain_goals needs goals drawn at random, not a fixed goal.")
        if self.start_goal == "stitch":
            if self.max_goal_distance < 1:
                raise ValueError(f"max_goal_distance must be >= 1, got {self.max_goal_distance}.")
            _stitch_table(self.layout, self.max_goal_distance)  # fails if there are no pairs

    # ----------------------------------------------------------------------- sizes

    @property
    def obs_size(self) -> int:
        """Length of an observation."""
        return self.body.obs_size

    @property
    def action_size(self) -> int:
        """Length of an action (each entry in `[-1, 1]`)."""
        return self.body.action_size

    @property
    def goal_indices(self) -> tuple[int, int]:
        """Indices of the agent's xy in an observation: `obs[..., goal_indices]` is a goal."""
        return (0, 1)

    def net_inputs(
        self, obs: Float[Array, "*batch obs"], goal: Float[Array, "*batch goal"]
    ) -> tuple[Float[Array, "*batch obs"], Float[Array, "*batch goal"]]:
        """Positions in cell units (world / cell size), the rest as is.

        Positions span tens of world units while actions lie in [-1, 1]; in cell units the
        action keeps its weight in a critic's φ(s, a) after the first LayerNorm.
        """
        scale = 1.0 / self.layout.cell_size
        position = jnp.asarray(self.goal_indices)
        return obs.at[..., position].multiply(scale), goal * scale

    def describe(self) -> dict:
        """The layout, body and episode settings (what a run compares on resume)."""
        return {
            "layout": self.layout.name,
            "rows": list(self.layout.rows),
            "cell_size": self.layout.cell_size,
            "body": repr(self.body),
            "episode_length": self.episode_length,
            "start_goal": self.start_goal,
            "goal_threshold": self.goal_threshold,
            "max_goal_distance": self.max_goal_distance,
            "start_cell": self.start_cell,
            "goal_cell": self.goal_cell,
            "goal_xy": self.goal_xy,
            "start_noise": self.start_noise,
            "goal_noise": self.goal_noise,
            "chain_goals": self.chain_goals,
            "model": [int(self.model.nq), int(self.model.ngeom), float(self.model.opt.timestep)],
        }

    @property
    def dt(self) -> float:
        """Simulated seconds per env step."""
        return self.body.timestep * self.body.n_substeps

    # ------------------------------------------------------------------ reset / step

    def reset(self, key: PRNGKeyArray) -> State:
        """**Arguments:**

        - `key`: PRNG key; the start, goal and every later reset follow from it.

        **Returns:** the first [`State`][deepcrl.envs.State] of an episode.
        """
        key, episode_key = jr.split(key)
        qpos, qvel, goal = self._sample_episode(episode_key)
        with mjx_numerics():
            data = mjx.make_data(self.model).replace(qpos=qpos, qvel=qvel)
        zero_i = jnp.zeros((), dtype=jnp.int32)
        zero_f = jnp.zeros((), dtype=jnp.float32)
        dist = jnp.linalg.norm(qpos[:2] - goal)
        return State(
            data=data,
            obs=self.body.observe(qpos, qvel),
            goal=goal,
            reward=zero_f,
            done=jnp.array(False),
            steps=zero_i,
            traj_id=zero_i,
            time_at_goal=zero_i,
            key=key,
            metrics={"dist": dist, "success": zero_f, "time_at_goal": zero_i},
        )

    def step(self, state: State, action: Float[Array, " action"]) -> State:
        """**Arguments:**

        - `state`: the current state.
        - `action`: in `[-1, 1]^action_size` (clipped).

        **Returns:** the next state; the first state of a new episode when this step ended one
        (then `done` is `True`).
        """
        action = jnp.clip(action, -1.0, 1.0)
        data = self._physics(self.body.act(state.data, action))
        dist = jnp.linalg.norm(data.qpos[:2] - state.goal)
        success = dist < self.goal_threshold
        time_at_goal = state.time_at_goal + success.astype(jnp.int32)
        steps = state.steps + 1
        done = (steps >= self.episode_length) | self.body.terminated(data)

        key, episode_key = jr.split(state.key)
        new_qpos, new_qvel, new_goal = self._sample_episode(episode_key)
        goal = state.goal
        if self.chain_goals:
            chain_key, coin_key = jr.split(jr.fold_in(episode_key, 1))
            chained = self._chained_goal(chain_key, data.qpos[:2])
            switch = success & (jr.uniform(coin_key) < self.chain_goals)
            goal = jnp.where(switch, chained, goal)
        qpos = jnp.where(done, new_qpos, data.qpos)
        qvel = jnp.where(done, new_qvel, data.qvel)
        # Only the state variables carry over between steps: derived quantities (positions of
        # bodies, contacts) are recomputed from qpos/qvel by the next physics step.
        data = data.replace(
            qpos=qpos,
            qvel=qvel,
            time=jnp.where(done, 0.0, data.time),
            qacc_warmstart=jnp.where(done, 0.0, data.qacc_warmstart),
            ctrl=jnp.where(done, 0.0, data.ctrl),
        )
        zero_i = jnp.zeros((), dtype=jnp.int32)
        return State(
            data=data,
            obs=self.body.observe(qpos, qvel),
            goal=jnp.where(done, new_goal, goal),
            reward=success.astype(jnp.float32),
            done=done,
            steps=jnp.where(done, zero_i, steps),
            traj_id=state.traj_id + done.astype(jnp.int32),
            time_at_goal=jnp.where(done, zero_i, time_at_goal),
            key=key,
            metrics={
                "dist": dist,
                "success": success.astype(jnp.float32),
                "time_at_goal": time_at_goal,
            },
        )

    def observation_at(self, xy: Float[ArrayLike, "*batch 2"]) -> Float[Array, "*batch obs"]:
        """A canonical observation with the agent's centre at world `xy`, at rest in its default
        posture (for value heatmaps). Works on any batch shape."""
        xy = jnp.asarray(xy, dtype=jnp.float32)
        flat = xy.reshape(-1, 2)
        obs = jax.vmap(lambda p: self.body.observe(*self.body.canonical_state(p)))(flat)
        return obs.reshape(*xy.shape[:-1], self.obs_size)

    # --------------------------------------------------------------------- internals

    def _physics(self, data: mjx.Data) -> mjx.Data:
        def substep(d: mjx.Data, _: None) -> tuple[mjx.Data, None]:
            return mjx.step(self.model, d), None

        with mjx_numerics():
            data, _ = jax.lax.scan(substep, data, None, length=self.body.n_substeps)
        return data

    def _sample_episode(
        self, key: PRNGKeyArray
    ) -> tuple[Float[Array, " nq"], Float[Array, " nv"], Float[Array, "2"]]:
        """A fresh episode: initial `(qpos, qvel)` and the goal xy."""
        cells_key, start_key, goal_key, agent_key = jr.split(key, 4)
        start_ij, goal_ij = self._sample_cells(cells_key)
        start = self.layout.cell_to_world(start_ij) + _noise(start_key, self.start_noise)
        if self.goal_xy is not None:
            goal = jnp.asarray(self.goal_xy, dtype=jnp.float32)
        else:
            goal = self._goal_in(goal_ij, goal_key)
        qpos, qvel = self.body.reset_state(start, agent_key)
        return qpos, qvel, goal

    def _goal_in(self, cell_ij: Int[Array, "2"], key: PRNGKeyArray) -> Float[Array, "2"]:
        """A goal point drawn in a cell: its centre plus `goal_noise`."""
        return self.layout.cell_to_world(cell_ij) + _noise(key, self.goal_noise)

    def _chained_goal(self, key: PRNGKeyArray, xy: Float[Array, "2"]) -> Float[Array, "2"]:
        """The next goal of a chain (see `chain_goals`), for an agent at `xy`."""
        cell_key, noise_key = jr.split(key)
        if self.start_goal == "uniform":
            cells = jnp.asarray(self.layout.reachable_cells)
            here = jnp.argmax(jnp.all(cells == self.layout.world_to_cell(xy)[None], axis=-1))
            goal_ij = cells[_other_index(cell_key, cells.shape[0], here)]
        else:
            goal_ij = self._reference_goal_cell(cell_key)
        return self._goal_in(goal_ij, noise_key)

    def _reference_goal_cell(self, key: PRNGKeyArray) -> Int[Array, "2"]:
        goals = jnp.asarray(self.layout.goal_cells)
        return goals[jr.randint(key, (), 0, goals.shape[0])]

    def _sample_cells(self, key: PRNGKeyArray) -> tuple[Int[Array, "2"], Int[Array, "2"]]:
        layout = self.layout
        if self.start_goal == "uniform":
            cells = jnp.asarray(layout.reachable_cells)
            n = cells.shape[0]
            k1, k2 = jr.split(key)
            a = jr.randint(k1, (), 0, n)
            return cells[a], cells[_other_index(k2, n, a)]
        if self.start_goal == "stitch":
            pairs, counts = _stitch_table(layout, self.max_goal_distance)
            k1, k2 = jr.split(key)
            d = jr.randint(k1, (), 0, counts.shape[0])
            n = jr.randint(k2, (), 0, jnp.asarray(counts)[d])
            pair = jnp.asarray(pairs)[d, n]
            return pair[0], pair[1]
        start = layout.start_cell if self.start_cell is None else self.start_cell
        if self.goal_cell is not None or self.goal_xy is not None:
            goal = self.goal_cell if self.goal_cell is not None else start
            return jnp.asarray(start, dtype=jnp.int32), jnp.asarray(goal, dtype=jnp.int32)
        return jnp.asarray(start, dtype=jnp.int32), self._reference_goal_cell(key)


def make_body(name: BodyName) -> AbstractBody:
    """The default body of each name: `"point"` or `"ant"`."""
    if name == "point":
        return PointBody(radius=0.5, max_step=0.5, timestep=0.02, n_substeps=5)
    if name == "ant":
        return AntBody()
    raise ValueError(f"Unknown body {name!r}; use 'point' or 'ant'.")


@functools.lru_cache(maxsize=64)
def _stitch_table(layout: Layout, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell pairs grouped by distance for `"stitch"` sampling.

    **Returns:** `pairs` of shape `(n_distances, n_max, 2, 2)` (padded by repeating the first
    pair) and `counts` of shape `(n_distances,)`; only distances with at least one pair within
    the start's connected part of the maze are kept.
    """
    reachable = layout._reach_from_start >= 0
    groups = []
    # No pair is farther apart than the longest distance in the maze (a huge max_distance
    # means any distance).
    for d in range(1, min(max_distance, int(layout._all_pairs.max())) + 1):
        pairs = layout.pairs_within(d, min_distance=d)
        keep = reachable[pairs[:, 0, 0], pairs[:, 0, 1]]
        if keep.any():
            groups.append(pairs[keep])
    if not groups:
        raise ValueError(f"No pairs of cells 1 to {max_distance} moves apart in {layout!r}.")
    n_max = max(len(g) for g in groups)
    padded = np.stack([np.concatenate([g, np.repeat(g[:1], n_max - len(g), 0)]) for g in groups])
    counts = np.array([len(g) for g in groups], dtype=np.int32)
    return padded.astype(np.int32), counts


def _other_index(key: PRNGKeyArray, n: int, a: Int[Array, ""]) -> Int[Array, ""]:
    """An index uniform over `[0, n)` without `a`."""
    b = jr.randint(key, (), 0, n - 1)
    return b + (b >= a).astype(b.dtype)


def _noise(key: PRNGKeyArray, scale: float) -> Float[Array, "2"]:
    return jr.uniform(key, (2,), minval=-scale, maxval=scale)


def _cell(name: str, cell: Sequence[int]) -> tuple[int, int]:
    cell = tuple(cell)
    message = f"{name} must be a cell (i, j) of two integers, got {cell!r}."
    if len(cell) != 2:
        raise ValueError(message)
    try:
        return as_integer(name, cell[0]), as_integer(name, cell[1])
    except ValueError:
        raise ValueError(message) from None


def _point(name: str, xy: Sequence[float]) -> tuple[float, float]:
    xy = tuple(xy)
    if len(xy) != 2:
        raise ValueError(f"{name} must be a point (x, y), got {xy!r}.")
    return float(xy[0]), float(xy[1])


def _check_cell(layout: Layout, name: str, cell: tuple[int, int]) -> None:
    """A `ValueError` unless `cell` is a free cell of `layout` reachable from its start."""
    rows, cols = layout.shape
    # Before any indexing: NumPy would wrap a negative index around to the far side.
    if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
        raise ValueError(
            f"{name}={cell} lies outside the {layout.name!r} grid of shape {layout.shape} "
            f"(0 <= i < {rows}, 0 <= j < {cols})."
        )
    if layout._reach_from_start[cell] < 0:
        raise ValueError(
            f"{name}={cell} is not a free cell reachable from the start in the "
            f"{layout.name!r} grid of shape {layout.shape}."
        )


def _check_goal_point(layout: Layout, xy: tuple[float, float]) -> None:
    """A `ValueError` unless world point `xy` lies in a free cell reachable from the start."""
    if not (math.isfinite(xy[0]) and math.isfinite(xy[1])):
        raise ValueError(f"goal_xy must be finite, got {xy}.")
    x_min, x_max, y_min, y_max = layout.extent
    if not (x_min <= xy[0] <= x_max and y_min <= xy[1] <= y_max):
        raise ValueError(
            f"goal_xy={xy} lies outside the {layout.name!r} maze, which spans "
            f"x in [{x_min}, {x_max}] and y in [{y_min}, {y_max}]."
        )
    # The layout's own rounding, so that the check agrees with where the env puts the point.
    point = np.asarray(xy, dtype=np.float32)
    cell = tuple(int(c) for c in np.asarray(layout.world_to_cell(point)))
    if bool(layout.in_wall(point)):
        raise ValueError(f"goal_xy={xy} lies in the wall cell {cell} of {layout.name!r}.")
    if layout._reach_from_start[cell] < 0:
        raise ValueError(
            f"goal_xy={xy} lies in cell {cell} of {layout.name!r}, which is not reachable "
            "from the start."
        )


def maze_mjcf(
    layout: Layout,
    body: AbstractBody,
    *,
    solver_iterations: int | None = None,
    ls_iterations: int | None = None,
    max_contact_points: int | None = None,
    max_geom_pairs: int | None = None,
) -> str:
    """The MJCF of a maze: one box per wall cell, a floor, a goal marker and the body.

    Wall boxes are per cell (not merged): MJX's `max_geom_pairs` culling by bounding-sphere
    distance misses real contacts with large merged boxes. Collision bits: walls are `contype`
    1 and the floor `contype` 2, so an agent geom with `conaffinity` 1 touches walls only and
    one with 3 touches walls and floor. Walls have priority: their contacts are frictionless
    (`condim` 1) whatever the agent geom.
    """
    s = layout.cell_size
    half_height = s / 4
    walls = "\n".join(
        f'    <geom name="wall_{i}_{j}" type="box" pos="{s * i} {s * j} {half_height}" '
        f'size="{s / 2} {s / 2} {half_height}" material="wall" contype="1" conaffinity="0" '
        'condim="1" priority="1"/>'
        for i, j in np.argwhere(layout.walls)
    )
    parts = body.mjcf()

    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    iterations = pick(solver_iterations, body.solver_iterations)
    ls_iterations = pick(ls_iterations, body.ls_iterations)
    contact_points = pick(max_contact_points, body.max_contact_points)
    geom_pairs = pick(max_geom_pairs, body.max_geom_pairs)
    for name, value in (("solver_iterations", iterations), ("ls_iterations", ls_iterations)):
        if as_integer(name, value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
    # MJX reads -1 as "no limit"; 0 (or less) keeps no contact: the body would pass walls.
    for name, value in (("max_contact_points", contact_points), ("max_geom_pairs", geom_pairs)):
        if as_integer(name, value) < 1 and value != -1:
            raise ValueError(f"{name} must be >= 1, or -1 for no limit, got {value}.")
    x_min, x_max, y_min, y_max = layout.extent
    cx, cy = (x_min + x_max) / 2, (y_min + y_max) / 2
    # The floor reaches past the outer walls so that renders show no background.
    floor_size = f"{(x_max - x_min) / 2 + 2 * s} {(y_max - y_min) / 2 + 2 * s}"
    return f"""<mujoco model="maze_{layout.name}_{body.name}">
  <compiler angle="degree" inertiafromgeom="true"/>
  <option {parts.option} iterations="{iterations}" ls_iterations="{ls_iterations}">
    <flag {parts.flags}/>
  </option>
  <custom>
    <numeric name="max_contact_points" data="{contact_points}"/>
    <numeric name="max_geom_pairs" data="{geom_pairs}"/>
  </custom>
  <default>{parts.default}
  </default>
  <visual>
    <global offwidth="640" offheight="480"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35"/>
  </visual>
  <asset>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.85 0.85 0.85" rgb2="0.75 0.75 0.75"
             width="64" height="64"/>
    <material name="floor" texture="floor" texrepeat="{s / 2} {s / 2}" texuniform="true"/>
    <material name="wall" rgba="0.22 0.25 0.35 1"/>
  </asset>
  <worldbody>
    <light name="top" pos="{cx} {cy} {4 * s}" dir="0 0 -1" directional="true"
           diffuse="0.5 0.5 0.5"/>
    <geom name="floor" type="plane" pos="{cx} {cy} 0" size="{floor_size} 0.1" material="floor"
          contype="2" conaffinity="0"/>
    <site name="goal" type="cylinder" size="0.5 0.02" pos="0 0 0.02" rgba="0.9 0.2 0.2 0.8"/>
{walls}
{parts.body}
  </worldbody>
  <actuator>{parts.actuators}
  </actuator>
</mujoco>
"""
