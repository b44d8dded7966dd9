import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Int, PRNGKeyArray

from ._buffer import TrajectoryBuffer, check_positive, check_window, gather, window_rows
from ._transition import Relabelled


def future_counts(traj_id: Int[Array, "*batch window"]) -> Int[Array, "*batch window"]:
    """For each time `i`, the number `n_i` of later steps in the same trajectory.

    A trajectory is a maximal run of equal consecutive ids, so `n_i` counts the steps from
    `i + 1` up to the end of `i`'s run (ids that increment at every reset make runs and
    episodes the same thing). Computed with one reverse associative scan: `O(window)` work.
    """
    window = traj_id.shape[-1]
    index = time_index(traj_id)
    # starts[k]: step k opens a new run; its index bounds the runs of all i < k.
    starts = traj_id[..., 1:] != traj_id[..., :-1]
    bound = jnp.where(starts, index[..., 1:], window)
    bound = jnp.concatenate([bound, jnp.full_like(bound[..., :1], window)], axis=-1)
    # next_start[i] = min(bound[i], ..., bound[window - 1]): the first run start after i.
    next_start = jax.lax.associative_scan(jnp.minimum, bound, reverse=True, axis=bound.ndim - 1)
    return next_start - index - 1


def truncated_geometric(
    key: PRNGKeyArray, n: Int[Array, "*shape"], discount: float
) -> Int[Array, "*shape"]:
    """Draw `k ∈ {1, ..., n}` with `P(k) ∝ discount^k`, independently for every entry of `n`.

    By the inverse CDF: `P(K ≤ k) = (1 - γ^k) / (1 - γ^n)`, so for `u ~ U[0, 1)`,
    `k = ⌈log(1 - u (1 - γ^n)) / log γ⌉`, evaluated as `log1p(u · expm1(n log γ)) / log γ`
    to stay accurate in float32 when γ is close to 1 and `n` is large (γ^n neither rounds
    to 1 nor loses its leading digits). Entries where `n = 0` give 0.

    **Arguments:**

    - `key`: PRNG key.
    - `n`: the number of future steps on offer, `>= 0`.
    - `discount`: γ in (0, 1).

    **Returns:** `k`, with the shape of `n`.
    """
    check_discount(discount)
    # log γ in float64 on the host: float32 would round 1 - γ when γ is near 1.
    log_discount = jnp.float32(math.log(discount))
    u = jr.uniform(key, n.shape, jnp.float32)
    nf = n.astype(jnp.float32)
    x = jnp.log1p(u * jnp.expm1(nf * log_discount)) / log_discount
    k = jnp.ceil(x).astype(jnp.int32)
    # u = 0 gives k = 0, and rounding can overshoot n by one: clip into {1..n}.
    return jnp.where(n > 0, jnp.clip(k, 1, jnp.maximum(n, 1)), 0)


def future_indices(
    key: PRNGKeyArray, traj_id: Int[Array, "*batch window"], discount: float
) -> tuple[Int[Array, "*batch window"], Bool[Array, "*batch window"]]:
    """Hindsight goal indices: for each time `i`, a later step `j` of the same trajectory.

    `j - i` follows the truncated geometric law `P(j - i = k) ∝ discount^k` on
    `{1, ..., n_i}`, where `n_i` is the number of later steps of `i`'s trajectory in the
    window ([`future_counts`][deepcrl.replay.future_counts]; drawn by
    [`truncated_geometric`][deepcrl.replay.truncated_geometric]). `O(window)` work.

    **Arguments:**

    - `key`: PRNG key.
    - `traj_id`: the trajectory ids of a window, `[window]` or batched `[..., window]`.
    - `discount`: γ in (0, 1).

    **Returns:** `(j, valid)`: `j` indexes the last axis; `valid[i]` is False where `i`
    is the last step of its trajectory in the window, and there `j = i`.
    """
    check_discount(discount)
    if traj_id.shape[-1] < 2:
        raise ValueError(f"window must be >= 2 (a step and a later one), got {traj_id.shape[-1]}.")
    n = future_counts(traj_id)
    return time_index(traj_id) + truncated_geometric(key, n, discount), n > 0


def sample_relabelled(
    state: TrajectoryBuffer,
    key: PRNGKeyArray,
    *,
    window: int,
    batch_size: int,
    discount: float,
    check: bool = True,
) -> Relabelled:
    """A training batch of transitions with their next steps and hindsight-relabelled future
    steps.

    The same law as sampling one window per environment
    ([`sample_windows`][deepcrl.replay.sample_windows]), drawing a future index for every
    step ([`future_indices`][deepcrl.replay.future_indices]), flattening to
    `num_envs * window` rows and drawing `batch_size` of the valid rows (those with a
    future) uniformly **with replacement**. Replacement keeps the output shape fixed
    whatever the number of valid rows (even when it is below `batch_size`) and every valid
    row equally likely; with the usual sizes (512 × 1000 rows, batches of a few hundred)
    repeats are rare. Only the trajectory ids of the windows are materialised: the data of
    the `3 × batch_size` chosen steps (now, next, future) is gathered straight from the ring.

    **Arguments:**

    - `state`: the buffer; it must hold at least `window` steps
      (see [`can_sample`][deepcrl.replay.can_sample]).
    - `key`: PRNG key.
    - `window`: steps per window, `2 <= window <= capacity`.
    - `batch_size`: rows returned, `>= 1`.
    - `discount`: γ in (0, 1) of the relabelling law `P(j - i = k) ∝ γ^k`.
    - `check`: raise at run time (`equinox.error_if`) when the buffer holds fewer than
      `window` steps or when no sampled step has a future (every trajectory in the windows
      is one step long). With `check=False` those cases return meaningless rows.

    **Returns:** a [`Relabelled`][deepcrl.replay.Relabelled] of three pytrees with the
    buffer's structure, leaves `[batch_size, ...]`: `now` (the step at `i`), `next` (the
    step at `i + 1`, of the same trajectory since `i` has a future) and `future` (the step
    at `j`). Take the goal from `future`, e.g. `future.obs[:, :2]`.
    """
    check_window(window, state.capacity)
    check_positive("batch_size", batch_size)
    check_discount(discount)
    window_key, future_key, row_key = jr.split(key, 3)
    rows = window_rows(state, window_key, window, check=check)
    j, valid = future_indices(future_key, gather(state.traj_id, rows), discount)
    flat = uniform_true_index(row_key, valid.reshape(-1), batch_size, check=check)
    env, i = flat // window, flat % window
    take = lambda t: jax.tree.map(lambda x: x[rows[env, t], env], state.data)  # noqa: E731
    return Relabelled(now=take(i), next=take(i + 1), future=take(j[env, i]))


def uniform_true_index(
    key: PRNGKeyArray, mask: Bool[Array, " n"], num: int, *, check: bool
) -> Int[Array, " num"]:
    """`num` indices drawn uniformly, with replacement, among the True entries of `mask`."""
    # Exact integer ranks: a float cumsum of probabilities drifts over ~10^6 entries.
    rank = jnp.cumsum(mask, dtype=jnp.int32)
    total = rank[-1]
    if check:
        total = eqx.error_if(
            total,
            total == 0,
            "No sampled step has a later step in its trajectory: nothing to relabel.",
        )
    r = jr.randint(key, (num,), 0, jnp.maximum(total, 1))
    # The first index whose inclusive rank exceeds r is the (r+1)-th True entry.
    index = jnp.searchsorted(rank, r, side="right").astype(jnp.int32)
    return jnp.minimum(index, mask.shape[0] - 1)


def time_index(x: Int[Array, "*batch window"]) -> Int[Array, "*batch window"]:
    """The position along the last axis, broadcast to `x`'s shape."""
    return jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)


def check_discount(discount: float) -> None:
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be in (0, 1), got {discount}.")
