"""Maze env steps per second against the number of parallel envs, with compile times.

Each measurement runs `jax.lax.scan` over `jax.vmap(env.step)` with random actions, auto-reset
included, and reports the best of three timed calls after a first call that compiles. A pure-JAX
kinematic point maze (grid lookups, axis-separated collisions; no physics engine) gives the speed
ceiling of any simulator of this task.

`python -m benchmarks envs`; set `DEEPCRL_BENCH_QUICK=1` for the smallest sizes only.
"""

import os
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from benchmarks._table import save_table
from deepcrl.envs import Layout, Maze, get_layout

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
ENV_STEPS_PER_CALL = 100_000  # steps per timed call (at least 10 per env)


class KinematicState(eqx.Module):
    xy: Float[Array, "2"]
    goal: Float[Array, "2"]
    steps: Int[Array, ""]
    traj_id: Int[Array, ""]
    done: Bool[Array, ""]
    reward: Float[Array, ""]
    key: PRNGKeyArray


class KinematicPointMaze(eqx.Module):
    """The point maze without a physics engine: the disc moves by `max_step · action` unless the
    move along an axis would bring it within `radius` of a wall (axis-separated collisions)."""

    layout: Layout = eqx.field(static=True)
    episode_length: int = eqx.field(static=True, default=1000)
    max_step: float = eqx.field(static=True, default=0.5)
    radius: float = eqx.field(static=True, default=0.5)

    def _episode(self, key: PRNGKeyArray) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        noise_key, goal_key = jr.split(key)
        start = self.layout.cell_to_world(jnp.asarray(self.layout.start_cell))
        start = start + jr.uniform(noise_key, (2,), minval=-0.1, maxval=0.1)
        goals = jnp.asarray(self.layout.goal_cells)
        goal = self.layout.cell_to_world(goals[jr.randint(goal_key, (), 0, goals.shape[0])])
        return start, goal

    def reset(self, key: PRNGKeyArray) -> KinematicState:
        key, episode_key = jr.split(key)
        xy, goal = self._episode(episode_key)
        zero = jnp.zeros((), jnp.int32)
        return KinematicState(xy, goal, zero, zero, jnp.array(False), jnp.float32(0.0), key)

    def step(self, state: KinematicState, action: Float[Array, "2"]) -> KinematicState:
        move = jnp.clip(action, -1.0, 1.0) * self.max_step
        xy = state.xy
        for axis in range(2):
            trial = xy.at[axis].add(move[axis])
            xy = jnp.where(self.layout.wall_distance(trial) >= self.radius, trial, xy)
        reward = (jnp.linalg.norm(xy - state.goal) < 0.5).astype(jnp.float32)
        steps = state.steps + 1
        done = steps >= self.episode_length
        key, episode_key = jr.split(state.key)
        new_xy, new_goal = self._episode(episode_key)
        return KinematicState(
            xy=jnp.where(done, new_xy, xy),
            goal=jnp.where(done, new_goal, state.goal),
            steps=jnp.where(done, 0, steps),
            traj_id=state.traj_id + done.astype(jnp.int32),
            done=done,
            reward=reward,
            key=key,
        )


def measure(env: Any, n_envs: int, action_size: int) -> dict[str, Any]:
    """Env steps/s (best of 3) and compile time of a scanned, vmapped rollout."""
    n_steps = max(10, ENV_STEPS_PER_CALL // n_envs)

    @jax.jit
    def rollout(state, key):
        def body(state, key):
            action = jr.uniform(key, (n_envs, action_size), minval=-1.0, maxval=1.0)
            return jax.vmap(env.step)(state, action), None

        return jax.lax.scan(body, state, jr.split(key, n_steps))[0]

    state = jax.block_until_ready(jax.jit(jax.vmap(env.reset))(jr.split(jr.key(0), n_envs)))
    start = time.perf_counter()
    state = jax.block_until_ready(rollout(state, jr.key(1)))
    first = time.perf_counter() - start
    times = []
    for i in range(3):
        start = time.perf_counter()
        state = jax.block_until_ready(rollout(state, jr.key(2 + i)))
        times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "n_envs": n_envs,
        "steps/s": round(n_envs * n_steps / best),
        "compile_s": round(max(first - best, 0.0), 1),
    }


def main() -> None:
    sizes = [256, 1024] if QUICK else [256, 1024, 4096, 16384]
    ant_sizes = [64, 256] if QUICK else [64, 256, 1024]
    cases: list[tuple[str, str, list[int], Callable[[], Any], int]] = [
        ("point (MJX)", "u_maze", sizes, lambda: Maze("u_maze"), 2),
        ("point (MJX)", "hardest_maze", [1024], lambda: Maze("hardest_maze"), 2),
        ("ant (MJX)", "u_maze", ant_sizes, lambda: Maze("u_maze", body="ant"), 8),
        (
            "kinematic point (pure JAX)",
            "u_maze",
            sizes,
            lambda: KinematicPointMaze(get_layout("u_maze")),
            2,
        ),
    ]
    rows = []
    for agent, layout, n_list, make, action_size in cases:
        try:
            env = make()
        except NotImplementedError as error:
            print(f"skipping {agent}: {error}")
            continue
        for n in n_list:
            row = {"env": agent, "layout": layout, **measure(env, n, action_size)}
            print(row, flush=True)
            rows.append(row)
    notes = (
        "Best of 3 timed calls of a `lax.scan` over `vmap(env.step)` (auto-reset included) after "
        "a compiling call; `compile_s` is the first call's extra time. Point: 5 physics substeps "
        "of 0.02 s per env step. Ant: 5 substeps of 0.01 s. The machine's 2 cores were shared "
        "with other work; repeated runs vary by about ±25%."
    )
    save_table("envs", "Maze env steps per second", rows, notes)


if __name__ == "__main__":
    main()
