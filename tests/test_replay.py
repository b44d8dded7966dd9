import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

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

# Few fixed sizes, so the jitted functions compile a handful of times (compilation is most
# of this file's run time) and hypothesis varies the data.
CAPACITY, NUM_ENVS, MAX_STEPS, BATCH = 8, 3, 48, 32
WINDOWS = (2, 5, 8)

insert = eqx.filter_jit(buffer_insert)
windows_of = eqx.filter_jit(sample_windows)
relabelled = eqx.filter_jit(sample_relabelled)
future_of = eqx.filter_jit(future_indices)
counts_of = jax.jit(future_counts)

lengths_st = st.lists(st.sampled_from([1, 3, 5, 8]), min_size=1, max_size=MAX_STEPS // CAPACITY)
resets_st = hnp.arrays(np.bool_, (MAX_STEPS, NUM_ENVS))
seeds_st = st.integers(0, 2**31 - 1)


# ---------------------------------------------------------------- a model of the env stream


def _example(num_envs: int) -> dict:
    # `t` is each step's global time and `traj` its trajectory id; `obs` holds (t, env, traj).
    return dict(
        obs=jnp.zeros((num_envs, 3), jnp.float32),
        t=jnp.zeros((num_envs,), jnp.int32),
        traj=jnp.zeros((num_envs,), jnp.int32),
    )


def _unroll(t0: int, traj: np.ndarray) -> dict:
    length, num_envs = traj.shape
    t = np.broadcast_to(np.arange(t0, t0 + length)[:, None], traj.shape)
    env = np.broadcast_to(np.arange(num_envs)[None, :], traj.shape)
    obs = np.stack([t, env, traj], axis=-1).astype(np.float32)
    return dict(obs=jnp.asarray(obs), t=jnp.asarray(t, jnp.int32), traj=jnp.asarray(traj))


def _fill(capacity: int, lengths, resets: np.ndarray):
    """Insert unrolls of the given lengths; a True in `resets[t, e]` starts a new trajectory.

    Returns the buffer, the number of steps inserted and the ids of every step, `[t, env]`.
    """
    state = buffer_init(_example(resets.shape[1]), capacity)
    traj_all = np.cumsum(resets, axis=0, dtype=np.int32)
    t0 = 0
    for length in lengths:
        traj = traj_all[t0 : t0 + length]
        state = insert(state, _unroll(t0, traj), jnp.asarray(traj))
        t0 += length
    return state, t0, traj_all


def _run_lengths(traj: np.ndarray) -> np.ndarray:
    """Brute force: the number of later steps in the run of equal ids holding each step."""
    n = np.zeros(traj.shape, np.int64)
    for index in np.ndindex(traj.shape[:-1]):
        row = traj[index]
        for i in range(len(row)):
            k = i
            while k + 1 < len(row) and row[k + 1] == row[i]:
                k += 1
            n[index + (i,)] = k - i
    return n


def _assert_tree_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _chi2_bound(df: int, z: float = 5.0) -> float:
    """Wilson-Hilferty upper quantile of a chi-square with `df` degrees, z standard deviations
    out (false alarm ~3e-7; the keys are fixed anyway, so a pass is reproducible)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _geometric_law(n: int, discount: float) -> np.ndarray:
    """P(k) for k = 1..n, proportional to discount^k (float64)."""
    w = discount ** np.arange(n, dtype=np.float64)
    return w / w.sum()


def _chi2(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(np.sum((counts - expected) ** 2 / expected))


# ------------------------------------------------------------------------------ layout


def test_init_layout():
    state = buffer_init(_example(4), capacity=10)
    assert isinstance(state, TrajectoryBuffer)
    assert state.data["obs"].shape == (10, 4, 3) and state.data["obs"].dtype == jnp.float32
    assert state.data["t"].shape == (10, 4) and state.data["t"].dtype == jnp.int32
    assert state.traj_id.shape == (10, 4) and state.traj_id.dtype == jnp.int32
    assert state.insert_position.shape == () and state.insert_position.dtype == jnp.int32
    assert state.size.shape == () and state.size.dtype == jnp.int32
    assert (state.capacity, state.num_envs) == (10, 4)
    assert all(not jnp.any(x) for x in jax.tree.leaves(state))


def test_whole_ring_window_is_the_last_steps_in_order():
    state, total, _ = _fill(CAPACITY, [3, 5, 8, 1], np.zeros((17, NUM_ENVS), np.bool_))
    assert (int(state.size), int(state.insert_position)) == (CAPACITY, total % CAPACITY)
    windows, win_traj = windows_of(state, jr.key(0), CAPACITY)
    expected = np.arange(total - CAPACITY, total)
    np.testing.assert_array_equal(windows["t"], np.stack([expected] * NUM_ENVS))
    assert windows["obs"].shape == (NUM_ENVS, CAPACITY, 3)
    assert win_traj.shape == (NUM_ENVS, CAPACITY)


# ------------------------------------------------------------------- buffer properties


@given(lengths=lengths_st, resets=resets_st, window=st.sampled_from(WINDOWS), seed=seeds_st)
def test_insert_then_read_back(lengths, resets, window, seed):
    state, total, traj = _fill(CAPACITY, lengths, resets)
    size = min(total, CAPACITY)
    assert int(state.size) == size and int(state.insert_position) == total % CAPACITY
    if size < window:
        assert not bool(can_sample(state, window))
        with pytest.raises(eqx.EquinoxRuntimeError, match="can_sample"):
            windows_of(state, jr.key(seed), window)
        return
    assert bool(can_sample(state, window))
    windows, win_traj = windows_of(state, jr.key(seed), window)
    t = np.asarray(windows["t"])
    # Consecutive times, all stored: chronological and never across the write boundary.
    np.testing.assert_array_equal(np.diff(t, axis=1), 1)
    assert t.min() >= total - size and t.max() < total
    env = np.broadcast_to(np.arange(NUM_ENVS)[:, None], t.shape)
    np.testing.assert_array_equal(win_traj, traj[t, env])
    np.testing.assert_array_equal(windows["traj"], traj[t, env])
    np.testing.assert_array_equal(windows["obs"], np.stack([t, env, traj[t, env]], axis=-1))
    if window == size:
        np.testing.assert_array_equal(t, np.broadcast_to(np.arange(total - size, total), t.shape))


def test_window_starts_cover_every_position():
    state, total, _ = _fill(CAPACITY, [5, 8, 5], np.zeros((18, NUM_ENVS), np.bool_))
    keys = jr.split(jr.key(0), 400)
    first = jax.vmap(lambda k: windows_of(state, k, 5)[0]["t"][:, 0])(keys)
    starts = np.asarray(first) - (total - CAPACITY)
    counts = np.bincount(starts.ravel(), minlength=CAPACITY - 5 + 1)
    assert len(counts) == CAPACITY - 5 + 1  # never past the newest step
    expected = np.full(len(counts), 1 / len(counts))
    assert _chi2(counts, expected) < _chi2_bound(len(counts) - 1)


# ------------------------------------------------------------------ relabelling properties


@given(lengths=lengths_st, resets=resets_st, window=st.sampled_from(WINDOWS), seed=seeds_st)
def test_relabelled_goals_are_strict_future_of_same_trajectory(lengths, resets, window, seed):
    resets[:, 0] = False  # env 0 is one long trajectory: some row always has a future
    state, total, traj = _fill(CAPACITY, lengths, resets)
    assume(bool(can_sample(state, window)))
    sample = relabelled(state, jr.key(seed), window=window, batch_size=BATCH, discount=0.9)
    transition, nxt, future = sample.now, sample.next, sample.future
    t, t_goal = np.asarray(transition["t"]), np.asarray(future["t"])
    # The next step is the stored step after `t`, of the same trajectory (`t` has a future).
    np.testing.assert_array_equal(np.asarray(nxt["t"]), t + 1)
    np.testing.assert_array_equal(nxt["traj"], transition["traj"])
    env = np.asarray(transition["obs"][:, 1]).astype(np.int64)
    assert np.all(t_goal > t) and np.all(t_goal - t < window)
    assert np.all(t >= total - CAPACITY) and np.all(t_goal < total)
    np.testing.assert_array_equal(future["obs"][:, 1], env)
    for a, b, e in zip(t, t_goal, env, strict=True):
        assert np.all(traj[a : b + 1, e] == traj[a, e])  # one unbroken trajectory
    np.testing.assert_array_equal(future["traj"], transition["traj"])


@given(
    traj=st.sampled_from([(5,), (12,), (3, 2), (3, 12)]).flatmap(
        lambda shape: hnp.arrays(np.int32, shape, elements=st.integers(0, 2))
    ),
    seed=seeds_st,
)
def test_future_indices_match_brute_force(traj, seed):
    n = _run_lengths(traj)
    np.testing.assert_array_equal(counts_of(jnp.asarray(traj)), n)
    j, valid = future_of(jr.key(seed), jnp.asarray(traj), 0.9)
    j, valid = np.asarray(j), np.asarray(valid)
    i = np.broadcast_to(np.arange(traj.shape[-1]), traj.shape)
    np.testing.assert_array_equal(valid, n > 0)  # invalid exactly when nothing follows
    np.testing.assert_array_equal(j[~valid], i[~valid])
    assert np.all((j[valid] > i[valid]) & (j[valid] <= i[valid] + n[valid]))
    goal = np.take_along_axis(traj, j, axis=-1)
    np.testing.assert_array_equal(goal, traj)


@settings(max_examples=10)
@given(resets=resets_st, seed=seeds_st)
def test_jit_matches_eager(resets, seed):
    resets[:, 0] = False
    state, _, _ = _fill(CAPACITY, [8, 8], resets)
    key = jr.key(seed)
    eager = sample_relabelled(state, key, window=5, batch_size=BATCH, discount=0.9)
    _assert_tree_equal(eager, relabelled(state, key, window=5, batch_size=BATCH, discount=0.9))
    _assert_tree_equal(sample_windows(state, key, 5), windows_of(state, key, 5))
    traj = state.traj_id[:5].T
    _assert_tree_equal(future_indices(key, traj, 0.9), future_of(key, traj, 0.9))


def test_deterministic_for_a_fixed_key():
    rng = np.random.default_rng(0)
    state, _, _ = _fill(CAPACITY, [8, 8, 3], rng.random((19, NUM_ENVS)) < 0.2)

    def draw(key):
        return relabelled(state, key, window=5, batch_size=BATCH, discount=0.9)

    first = draw(jr.key(1))
    _assert_tree_equal(first, draw(jr.key(1)))
    other = draw(jr.key(2))
    assert not np.array_equal(first.now["t"], other.now["t"])


def test_vmap_over_seeds():
    def run(key):
        # A miniature collection loop: 3 unrolls of 4 steps, random resets, one batch.
        state = buffer_init(dict(x=jnp.zeros((2, 2), jnp.float32)), capacity=10)

        def step(carry, k):
            state, traj = carry
            x_key, reset_key = jr.split(k)
            traj = traj + jnp.cumsum(jr.bernoulli(reset_key, 0.3, (4, 2)), 0, dtype=jnp.int32)
            state = buffer_insert(state, dict(x=jr.normal(x_key, (4, 2, 2))), traj)
            return (state, traj[-1:]), None

        carry = (state, jnp.zeros((1, 2), jnp.int32))
        (state, _), _ = jax.lax.scan(step, carry, jr.split(key, 3))
        return state, sample_relabelled(state, key, window=6, batch_size=8, discount=0.9)

    keys = jr.split(jr.key(0), 3)
    batched = jax.jit(jax.vmap(run))(keys)
    assert batched[0].traj_id.shape == (3, 10, 2) and batched[1].now["x"].shape == (3, 8, 2)
    for s, key in enumerate(keys):
        _assert_tree_equal(jax.tree.map(lambda x, s=s: x[s], batched), jax.jit(run)(key))


# ---------------------------------------------------------------- sampling distributions


def test_truncated_geometric_small_n_law():
    n, discount, num = 30, 0.9, 200_000
    k = truncated_geometric(jr.key(0), jnp.full((num,), n, jnp.int32), discount)
    counts = np.bincount(np.asarray(k), minlength=n + 1)
    assert counts[0] == 0 and len(counts) == n + 1  # support {1..n}
    bound = _chi2_bound(n - 1)
    assert _chi2(counts[1:], _geometric_law(n, discount)) < bound
    assert _chi2(counts[1:], _geometric_law(n, 0.89)) > bound  # the test can tell 0.89


@pytest.mark.parametrize(("n", "discount"), [(1000, 0.99), (10_000, 0.999), (10_000, 0.9999)])
def test_truncated_geometric_law_near_one(n, discount):
    # float32 safety: γ close to 1, n up to 10,000. Bin k into 20 equal-mass bins of the law.
    num, bins = 200_000, 20
    k = np.asarray(truncated_geometric(jr.key(1), jnp.full((num,), n, jnp.int32), discount))
    assert k.min() >= 1 and k.max() <= n

    def binned_chi2(law_discount: float) -> float:
        probs = _geometric_law(n, law_discount)
        last = np.searchsorted(np.cumsum(probs), np.arange(1, bins) / bins)  # 0-based k - 1
        counts = np.bincount(np.searchsorted(last + 1, k, side="left"), minlength=bins)
        return _chi2(counts, np.add.reduceat(probs, np.concatenate([[0], last + 1])))

    bound = _chi2_bound(bins - 1)
    assert binned_chi2(discount) < bound
    assert binned_chi2(1 - 0.9 * (1 - discount)) > bound  # 10% off in 1 - γ is detected


def test_future_offsets_follow_the_law():
    # One trajectory per row: step i has n = window - 1 - i future steps.
    window, rows, discount = 12, 40_000, 0.8
    traj = jnp.zeros((rows, window), jnp.int32)
    j, valid = future_indices(jr.key(2), traj, discount)
    assert bool(jnp.all(valid[:, :-1])) and not bool(jnp.any(valid[:, -1]))
    for i in (0, 5, 9):
        n = window - 1 - i
        counts = np.bincount(np.asarray(j[:, i]) - i, minlength=n + 1)
        assert counts[0] == 0 and len(counts) == n + 1
        assert _chi2(counts[1:], _geometric_law(n, discount)) < _chi2_bound(n - 1)


def test_batch_rows_uniform_over_valid_rows():
    # Whole-ring windows of single trajectories: valid rows are (env, i) for i < window - 1.
    # Within one call each row carries a single future draw, so pool many calls.
    state, total, _ = _fill(CAPACITY, [8], np.zeros((8, NUM_ENVS), np.bool_))
    keys = jr.split(jr.key(3), 2000)
    sample = jax.vmap(
        lambda k: relabelled(state, k, window=CAPACITY, batch_size=BATCH, discount=0.9)
    )(keys)
    transition, future = sample.now, sample.future
    i = np.asarray(transition["t"]).ravel() - (total - CAPACITY)
    env = np.asarray(transition["obs"][..., 1]).ravel().astype(np.int64)
    counts = np.bincount(env * CAPACITY + i, minlength=NUM_ENVS * CAPACITY)
    counts = counts.reshape(NUM_ENVS, CAPACITY)
    assert np.all(counts[:, -1] == 0)  # the last step has no future: never drawn
    cells = NUM_ENVS * (CAPACITY - 1)
    assert _chi2(counts[:, :-1].ravel(), np.full(cells, 1 / cells)) < _chi2_bound(cells - 1)
    # Offsets: the even mixture over rows of truncated geometric laws on {1..n}, n = 1..7.
    offsets = np.asarray(future["t"]).ravel() - np.asarray(transition["t"]).ravel()
    laws = [np.pad(_geometric_law(n, 0.9), (0, CAPACITY - 1 - n)) for n in range(1, CAPACITY)]
    mixture = np.mean(laws, axis=0)
    counts = np.bincount(offsets, minlength=CAPACITY)
    assert counts[0] == 0 and len(counts) == CAPACITY
    assert _chi2(counts[1:], mixture) < _chi2_bound(CAPACITY - 2)


def test_future_indices_linear_work():
    # No [window, window] intermediate: the count of future steps is a scan, not a pairwise
    # comparison. Every array in the program is at most a few windows long.
    window = 2048
    jaxpr = jax.make_jaxpr(lambda k, t: future_indices(k, t, 0.99))(
        jr.key(0), jnp.zeros((window,), jnp.int32)
    ).jaxpr

    def sizes(jaxpr):
        for eqn in jaxpr.eqns:
            yield from (math.prod(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    inner = getattr(sub, "jaxpr", None)
                    if inner is not None:
                        yield from sizes(getattr(inner, "jaxpr", inner))

    assert max(sizes(jaxpr)) <= 2 * window


# ------------------------------------------------------------------------------ errors


def test_too_small_buffer_raises_at_run_time():
    state, _, _ = _fill(CAPACITY, [3], np.zeros((3, 2), np.bool_))
    assert not bool(can_sample(state, 4)) and bool(can_sample(state, 3))
    with pytest.raises(eqx.EquinoxRuntimeError, match="can_sample"):
        windows_of(state, jr.key(0), 4)
    with pytest.raises(eqx.EquinoxRuntimeError, match="can_sample"):
        relabelled(state, jr.key(0), window=4, batch_size=2, discount=0.9)


def test_nothing_to_relabel_raises_at_run_time():
    # Every step starts a new trajectory: no step has a future.
    state, _, _ = _fill(CAPACITY, [6], np.ones((6, 2), np.bool_))
    with pytest.raises(eqx.EquinoxRuntimeError, match="nothing to relabel"):
        relabelled(state, jr.key(0), window=4, batch_size=2, discount=0.9)


@pytest.mark.parametrize("discount", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_bad_discount(discount):
    state, _, _ = _fill(CAPACITY, [8], np.zeros((8, 2), np.bool_))
    with pytest.raises(ValueError, match=f"discount must be in \\(0, 1\\), got {discount}"):
        sample_relabelled(state, jr.key(0), window=4, batch_size=2, discount=discount)
    with pytest.raises(ValueError, match="discount"):
        future_indices(jr.key(0), jnp.zeros((4,), jnp.int32), discount)
    with pytest.raises(ValueError, match="discount"):
        truncated_geometric(jr.key(0), jnp.ones((4,), jnp.int32), discount)


def test_bad_sizes():
    state, _, _ = _fill(CAPACITY, [8], np.zeros((8, 2), np.bool_))
    with pytest.raises(ValueError, match="window must be >= 2 .*got 1"):
        sample_windows(state, jr.key(0), 1)
    with pytest.raises(ValueError, match="window=9 is longer than the buffer's capacity=8"):
        sample_windows(state, jr.key(0), 9)
    with pytest.raises(ValueError, match="window=9"):
        can_sample(state, 9)
    with pytest.raises(ValueError, match="window=9"):
        sample_relabelled(state, jr.key(0), window=9, batch_size=2, discount=0.9)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        sample_relabelled(state, jr.key(0), window=4, batch_size=0, discount=0.9)
    with pytest.raises(ValueError, match="batch_size must be an integer, got True"):
        sample_relabelled(state, jr.key(0), window=4, batch_size=True, discount=0.9)
    with pytest.raises(ValueError, match="got 1"):
        future_indices(jr.key(0), jnp.zeros((3, 1), jnp.int32), 0.9)
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        buffer_init(_example(2), capacity=0)


def test_bad_example():
    # The runtime type checker may report these first (a TypeError) when it is on.
    with pytest.raises((ValueError, TypeError), match="num_envs"):
        buffer_init(dict(a=jnp.zeros((2, 3)), b=jnp.zeros((3,))), capacity=4)
    with pytest.raises(ValueError, match="no array leaves"):
        buffer_init({}, capacity=4)


def test_bad_unroll():
    state = buffer_init(_example(2), capacity=4)
    good = _unroll(0, np.zeros((3, 2), np.int32))
    traj = jnp.zeros((3, 2), jnp.int32)
    insert(state, good, traj)  # the reference call works
    with pytest.raises(ValueError, match="structure"):
        buffer_insert(state, dict(obs=good["obs"], t=good["t"]), traj)
    with pytest.raises(ValueError, match=r"traj_id must have shape \[time, num_envs=2\]"):
        buffer_insert(state, _unroll(0, np.zeros((3, 3), np.int32)), jnp.zeros((3, 3), jnp.int32))
    with pytest.raises(ValueError, match="An unroll of 5 steps does not fit a ring of 4"):
        buffer_insert(state, _unroll(0, np.zeros((5, 2), np.int32)), jnp.zeros((5, 2), jnp.int32))
    with pytest.raises(ValueError, match=r"unroll\['obs'\] has shape \(3, 2, 4\)"):
        buffer_insert(state, {**good, "obs": jnp.zeros((3, 2, 4), jnp.float32)}, traj)
    with pytest.raises(ValueError, match=r"unroll\['t'\] has dtype float32"):
        buffer_insert(state, {**good, "t": jnp.zeros((3, 2), jnp.float32)}, traj)


@pytest.mark.parametrize("size", [2.5, 4.0, math.nan, math.inf, True, "4"])
def test_sizes_must_be_integers(size, monkeypatch):
    # As users run it, without the tests' runtime type checks (which refuse some of these
    # first): a float must not slip through `window < 2` and become a shape.
    monkeypatch.setattr("jaxtyping.config.jaxtyping_disable", True)
    state = buffer_init(_example(2), capacity=4)
    with pytest.raises(ValueError, match=f"window must be an integer, got {size!r}"):
        can_sample(state, size)
    with pytest.raises(ValueError, match="window must be an integer"):
        sample_windows(state, jr.key(0), size)
    with pytest.raises(ValueError, match=f"capacity must be an integer, got {size!r}"):
        buffer_init(_example(2), capacity=size)


def test_integer_sizes_of_any_integer_type_are_accepted(monkeypatch):
    monkeypatch.setattr("jaxtyping.config.jaxtyping_disable", True)  # the checks want `int`
    state = buffer_init(_example(2), capacity=np.int64(4))  # pyright: ignore[reportArgumentType]
    assert state.capacity == 4 and type(state.capacity) is int
    for window in (2, np.int32(2), jnp.asarray(2)):
        assert not bool(can_sample(state, window))  # pyright: ignore[reportArgumentType]
