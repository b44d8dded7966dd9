import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Int, PRNGKeyArray, PyTree, Shaped

from .._checks import as_integer


class TrajectoryBuffer(eqx.Module):
    """A ring of the last `capacity` time steps of every environment, with trajectory ids.

    A pytree of arrays (plus two static sizes), so it can be carried through `jax.lax.scan`,
    returned from `jax.jit` and batched with `jax.vmap`. Build it with
    [`buffer_init`][deepcrl.replay.buffer_init], fill it with
    [`buffer_insert`][deepcrl.replay.buffer_insert].

    Row `r` of every leaf holds one time step of all environments. Rows are written in
    order `insert_position, insert_position + 1, ...` (modulo `capacity`), so once the ring
    is full the oldest step is at `insert_position` and the newest just before it.
    """

    data: PyTree[Shaped[Array, "capacity num_envs ..."]]
    traj_id: Int[Array, "capacity num_envs"]
    insert_position: Int[Array, ""]
    size: Int[Array, ""]
    capacity: int = eqx.field(static=True)
    num_envs: int = eqx.field(static=True)

    def __check_init__(self):
        check_positive("capacity", self.capacity)
        check_positive("num_envs", self.num_envs)


def buffer_init(example: PyTree[Shaped[Array, "num_envs ..."]], capacity: int) -> TrajectoryBuffer:
    """An empty buffer for time steps shaped like `example`.

    **Arguments:**

    - `example`: one time step from every environment, e.g. `dict(obs=..., action=...)`;
      every leaf has the number of environments as its leading axis. Only shapes and
      dtypes are used.
    - `capacity`: time steps kept per environment (the ring's length), at least 1.

    **Returns:** a [`TrajectoryBuffer`][deepcrl.replay.TrajectoryBuffer] whose data leaves
    are zeros of shape `[capacity, num_envs, ...]` with the example's dtypes, trajectory ids
    zeros of shape `[capacity, num_envs]` (int32), and insert position and size 0.
    """
    check_positive("capacity", capacity)
    capacity = operator.index(capacity)  # a plain int: NumPy ints make poor static fields
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError("example has no array leaves; the buffer would store nothing.")
    num_envs = _leading_size(example, "example")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *x.shape), x.dtype), example)
    return TrajectoryBuffer(
        data=data,
        traj_id=jnp.zeros((capacity, num_envs), jnp.int32),
        insert_position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
        capacity=capacity,
        num_envs=num_envs,
    )


def buffer_insert(
    state: TrajectoryBuffer,
    unroll: PyTree[Shaped[Array, "time num_envs ..."]],
    traj_id: Int[Array, "time num_envs"],
) -> TrajectoryBuffer:
    """Append `time` steps of every environment, overwriting the oldest ones.

    Pure and jittable (`time` is static). Donate the buffer to the jitted function that
    calls this (`jax.jit(..., donate_argnums=...)`, or carry it through a `lax.scan`) so
    that XLA updates it in place instead of copying it.

    **Arguments:**

    - `state`: the buffer.
    - `unroll`: a pytree with the buffer's structure and dtypes, leaves
      `[time, num_envs, ...]`, in chronological order; `time <= capacity`.
    - `traj_id`: `[time, num_envs]` trajectory ids: an id that increments whenever that
      environment resets, so that consecutive steps with equal ids belong to one episode.

    **Returns:** the updated buffer.
    """
    time = _check_unroll(state, unroll, traj_id)
    rows = (state.insert_position + jnp.arange(time, dtype=jnp.int32)) % state.capacity

    def write(buffer: Array, new: Array) -> Array:
        # Distinct rows (time <= capacity): a plain scatter with no combining.
        return buffer.at[rows].set(new, unique_indices=True)

    return TrajectoryBuffer(
        data=jax.tree.map(write, state.data, unroll),
        traj_id=write(state.traj_id, traj_id.astype(jnp.int32)),
        insert_position=(state.insert_position + time) % state.capacity,
        size=jnp.minimum(state.size + time, state.capacity),
        capacity=state.capacity,
        num_envs=state.num_envs,
    )


def can_sample(state: TrajectoryBuffer, window: int) -> Bool[Array, ""]:
    """Whether the buffer holds at least `window` steps per environment.

    A boolean scalar array: check it on the host (`bool(can_sample(state, window))`) before
    calling [`sample_windows`][deepcrl.replay.sample_windows] or
    [`sample_relabelled`][deepcrl.replay.sample_relabelled], e.g. to keep collecting
    without training while the buffer fills up.
    """
    check_window(window, state.capacity)
    return state.size >= window


def sample_windows(
    state: TrajectoryBuffer, key: PRNGKeyArray, window: int, *, check: bool = True
) -> tuple[PyTree[Shaped[Array, "num_envs window ..."]], Int[Array, "num_envs window"]]:
    """One window of `window` consecutive time steps from every environment.

    Each environment's window starts at an independent, uniformly drawn position among the
    `size - window + 1` windows that fit between its oldest and its newest stored step, so
    a window is always in chronological order and never crosses the ring's write boundary.

    **Arguments:**

    - `state`: the buffer; it must hold at least `window` steps
      (see [`can_sample`][deepcrl.replay.can_sample]).
    - `key`: PRNG key.
    - `window`: steps per window, `2 <= window <= capacity` (a `ValueError` at trace time
      otherwise).
    - `check`: when the buffer holds fewer than `window` steps, raise an error at run time
      (`equinox.error_if`; under `jax.jit` the error surfaces when the result is computed).
      With `check=False` such a call returns windows that run into the never-written,
      all-zero rows: only turn it off where `can_sample` is guaranteed, e.g. inside a
      `lax.cond` on it under `jax.vmap`, where both branches run.

    **Returns:** `(windows, traj_id)`: the data, leaves `[num_envs, window, ...]`, and the
    trajectory ids `[num_envs, window]` of the same steps.
    """
    rows = window_rows(state, key, window, check=check)
    return gather(state.data, rows), gather(state.traj_id, rows)


def window_rows(
    state: TrajectoryBuffer, key: PRNGKeyArray, window: int, *, check: bool
) -> Int[Array, "num_envs window"]:
    """The ring rows of one random window per environment (see `sample_windows`)."""
    check_window(window, state.capacity)
    size = state.size
    if check:
        size = eqx.error_if(
            size,
            size < window,
            f"The replay buffer holds fewer time steps per environment than window={window}; "
            "check can_sample(state, window) before sampling.",
        )
    # Logical index 0 is the oldest stored step; the newest is size - 1.
    oldest = (state.insert_position - size) % state.capacity
    start = jr.randint(key, (state.num_envs, 1), 0, jnp.maximum(size - window + 1, 1))
    offsets = jnp.arange(window, dtype=jnp.int32)[None, :]
    return (oldest + start + offsets) % state.capacity


def gather(tree: PyTree[Shaped[Array, "capacity num_envs ..."]], rows: Int[Array, "*shape"]):
    """`leaf[rows[..., k], env]` for every leaf, where `rows`' leading axis is the env."""
    env = jnp.arange(rows.shape[0], dtype=jnp.int32).reshape((-1,) + (1,) * (rows.ndim - 1))
    return jax.tree.map(lambda x: x[rows, env], tree)


def check_window(window: int, capacity: int) -> None:
    as_integer("window", window)
    if window < 2:
        raise ValueError(f"window must be >= 2 (a step and a later one), got {window}.")
    if window > capacity:
        raise ValueError(
            f"window={window} is longer than the buffer's capacity={capacity} steps per env."
        )


def check_positive(name: str, value: int) -> None:
    as_integer(name, value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")


def _leading_size(tree: PyTree[Array], name: str) -> int:
    """The common leading axis size of every leaf of `tree` (a `ValueError` if they differ)."""
    sizes = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        where = f"{name}{jax.tree_util.keystr(path)}"
        if jnp.ndim(leaf) < 1:
            raise ValueError(f"{where} is a scalar; every leaf needs a leading num_envs axis.")
        sizes[where] = jnp.shape(leaf)[0]
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Leaves disagree on the leading (num_envs) axis: {sizes}.")
    return next(iter(sizes.values()))


def _check_unroll(state: TrajectoryBuffer, unroll: PyTree[Array], traj_id: Array) -> int:
    """The unroll's length, after checking it fits the buffer (a `ValueError` otherwise)."""
    if jax.tree.structure(unroll) != jax.tree.structure(state.data):
        raise ValueError(
            "unroll's structure differs from the buffer's: "
            f"{jax.tree.structure(unroll)} vs {jax.tree.structure(state.data)}."
        )
    if traj_id.ndim != 2 or traj_id.shape[1] != state.num_envs:
        raise ValueError(
            f"traj_id must have shape [time, num_envs={state.num_envs}], got {traj_id.shape}."
        )
    time = traj_id.shape[0]
    if not 1 <= time <= state.capacity:
        raise ValueError(f"An unroll of {time} steps does not fit a ring of {state.capacity}.")
    paths = jax.tree_util.tree_leaves_with_path(unroll)
    for (path, new), old in zip(paths, jax.tree.leaves(state.data), strict=True):
        where = f"unroll{jax.tree_util.keystr(path)}"
        expected = (time, *old.shape[1:])
        if new.shape != expected:
            raise ValueError(
                f"{where} has shape {new.shape}; the buffer expects {expected} "
                "([time, num_envs, ...], time taken from traj_id)."
            )
        if new.dtype != old.dtype:
            raise ValueError(f"{where} has dtype {new.dtype}; the buffer stores {old.dtype}.")
    return time
