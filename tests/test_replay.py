import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from deepcrl.replay import (
    TrajectoryBuffer,
    buffer_init,
    buffer_insert,
    can_sample,
    future_counts,
    future_indices,
    sample_relabelled,
    sample_windows,
    truncated_geometric,
)


def _assert_tree_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _example(num_envs: int) -> dict:
    # `t` is each step's global time, `traj` its trajectory id: enough to check every law.
    return dict(
        obs=jnp.zeros((num_envs, 3), jnp.float32),
        t=jnp.zeros((num_envs,), jnp.int32),
        traj=jnp.zeros((num_envs,), jnp.int32),
    )


def _unroll(t0: int, length: int, num_envs: int, traj: np.ndarray) -> dict:
    """`length` steps from time `t0`; env `e`'s obs encode (t, e, traj)."""
    t = np.broadcast_to(np.arange(t0, t0 + length)[:, None], (length, num_envs))
    e = np.broadcast_to(np.arange(num_envs)[None, :], (length, num_envs))
    obs = np.stack([t, e, traj], axis=-1).astype(np.float32)
    t, traj = jnp.asarray(t, jnp.int32), jnp.asarray(traj, jnp.int32)
    return dict(obs=jnp.asarray(obs), t=t, traj=traj)


def _fill(capacity: int, num_envs: int, lengths, resets: np.ndarray):
    """Insert unrolls of the given lengths; `resets[t, e]` starts a new trajectory at t."""
    state = buffer_init(_example(num_envs), capacity)
    traj_all = np.cumsum(resets, axis=0).astype(np.int32)
    t0 = 0
    for length in lengths:
        traj = traj_all[t0 : t0 + length]
        state = buffer_insert(state, _unroll(t0, length, num_envs, traj), jnp.asarray(traj))
        t0 += length
    return state, t0, traj_all


def test_init_layout():
    state = buffer_init(_example(4), capacity=10)
    assert isinstance(state, TrajectoryBuffer)
    assert state.data["obs"].shape == (10, 4, 3) and state.data["obs"].dtype == jnp.float32
    assert state.data["t"].shape == (10, 4) and state.data["t"].dtype == jnp.int32
    assert state.traj_id.shape == (10, 4) and state.traj_id.dtype == jnp.int32
    assert state.insert_position.shape == () and state.insert_position.dtype == jnp.int32
    assert state.size.dtype == jnp.int32 and int(state.size) == 0
    assert (state.capacity, state.num_envs) == (10, 4)
    assert all(not jnp.any(x) for x in jax.tree.leaves(state))


def test_insert_wraps_and_sample_windows():
    resets = np.zeros((30, 2), np.int32)
    state, total, _ = _fill(7, 2, [3, 4, 5, 2], resets)
    assert (int(state.size), int(state.insert_position)) == (7, total % 7)
    windows, win_traj = sample_windows(state, jr.key(0), 7)
    # A window as long as the ring is the whole ring, oldest first.
    expected = np.arange(total - 7, total)
    np.testing.assert_array_equal(windows["t"], np.stack([expected, expected]))
    assert win_traj.shape == (2, 7)


def test_future_counts_example():
    traj = jnp.array([0, 0, 1, 1, 1, 2, 0, 0], jnp.int32)
    np.testing.assert_array_equal(future_counts(traj), [1, 0, 2, 1, 0, 0, 1, 0])
    j, valid = future_indices(jr.key(0), traj, 0.9)
    np.testing.assert_array_equal(valid, [1, 0, 1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(j[~valid], np.arange(8)[~np.asarray(valid)])


def test_sample_relabelled_same_trajectory_future():
    rng = np.random.default_rng(0)
    resets = (rng.random((40, 3)) < 0.2).astype(np.int32)
    state, _, _ = _fill(16, 3, [5, 9, 12, 14], resets)
    transition, future = sample_relabelled(state, jr.key(1), window=10, batch_size=64, discount=0.9)
    assert transition["obs"].shape == (64, 3) and future["t"].shape == (64,)
    assert jnp.all(future["t"] > transition["t"])
    assert jnp.all(future["traj"] == transition["traj"])
    assert jnp.all(future["obs"][:, 1] == transition["obs"][:, 1])  # same env


def test_too_small_buffer():
    state, _, _ = _fill(8, 2, [3], np.zeros((3, 2), np.int32))
    assert not bool(can_sample(state, 4)) and bool(can_sample(state, 3))
    with pytest.raises(eqx.EquinoxRuntimeError, match="can_sample"):
        eqx.filter_jit(sample_windows)(state, jr.key(0), 4)
    with pytest.raises(eqx.EquinoxRuntimeError, match="can_sample"):
        sample_relabelled(state, jr.key(0), window=4, batch_size=2, discount=0.9)


def test_truncated_geometric_support():
    n = jnp.array([0, 1, 2, 5, 10_000], jnp.int32)
    k = jax.vmap(lambda key: truncated_geometric(key, n, 0.999))(jr.split(jr.key(0), 500))
    assert jnp.all(k[:, 0] == 0) and jnp.all(k[:, 1] == 1)
    assert jnp.all((k[:, 2:] >= 1) & (k[:, 2:] <= n[None, 2:]))


def test_jit_matches_eager():
    resets = np.zeros((20, 2), np.int32)
    resets[5] = 1
    state, _, _ = _fill(12, 2, [8, 8], resets)

    def draw(s, key):
        return sample_relabelled(s, key, window=6, batch_size=16, discount=0.95)

    _assert_tree_equal(draw(state, jr.key(3)), eqx.filter_jit(draw)(state, jr.key(3)))
