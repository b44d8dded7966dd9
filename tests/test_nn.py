import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jaxtyping
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax.test_util import check_grads

from deepcrl.nn import (
    ENERGIES,
    ContrastiveCritic,
    QEnsemble,
    ResidualBlock,
    ResidualMLP,
    TanhGaussianActor,
    UnrolledResidualMLP,
    energy_fn,
    pairwise_energy,
)

from .helpers import count_eqns, tree_allclose, tree_finite


def _loss(model, x):
    return jnp.mean(jnp.square(jax.vmap(model)(x)))


_forward = eqx.filter_jit(lambda model, x: jax.vmap(model)(x))
_grad = eqx.filter_jit(eqx.filter_grad(_loss))


@settings(max_examples=4)  # each example compiles four programs
@given(
    num_blocks=st.integers(1, 4),
    width=st.sampled_from([1, 8, 32]),
    layer_norm=st.booleans(),
    remat=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scanned_equals_unrolled(num_blocks, width, layer_norm, remat, seed):
    key, xkey = jr.split(jr.key(seed))
    model = ResidualMLP(
        3, 2, width=width, depth=4 * num_blocks, layer_norm=layer_norm, remat=remat, key=key
    )
    unrolled = model.unrolled()
    assert isinstance(unrolled, UnrolledResidualMLP)
    assert unrolled.depth == model.depth
    x = jr.normal(xkey, (5, 3))
    assert tree_allclose(_forward(model, x), _forward(unrolled, x), rtol=1e-5, atol=1e-5)
    grads, grads_unrolled = _grad(model, x), _grad(unrolled, x)
    assert tree_allclose(grads.unrolled(), grads_unrolled, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scan_unroll", [2, 4])
def test_scan_unroll_keeps_the_function(getkey, scan_unroll):
    key = getkey()
    model = ResidualMLP(4, 4, width=16, depth=16, key=key)
    other = ResidualMLP(4, 4, width=16, depth=16, scan_unroll=scan_unroll, key=key)
    x = jr.normal(getkey(), (3, 4))
    assert tree_allclose(_forward(model, x), _forward(other, x))


def test_trace_size_does_not_grow_with_depth(getkey):
    def eqns(depth):
        model = ResidualMLP(8, 8, width=16, depth=depth, key=getkey())
        params, static = eqx.partition(model, eqx.is_array)

        def loss(p, x):
            return _loss(eqx.combine(p, static), x)

        return count_eqns(jax.make_jaxpr(jax.value_and_grad(loss))(params, jnp.ones((2, 8))).jaxpr)

    shallow, deep = eqns(4), eqns(1024)
    assert shallow == deep
    unrolled = ResidualMLP(8, 8, width=16, depth=16, key=getkey()).unrolled()
    unrolled_eqns = count_eqns(
        jax.make_jaxpr(lambda x: jax.vmap(unrolled)(x))(jnp.ones((2, 8))).jaxpr
    )
    assert unrolled_eqns > 3 * count_eqns(
        jax.make_jaxpr(lambda x: jax.vmap(unrolled.blocks[0])(x))(jnp.ones((2, 16))).jaxpr
    )


@pytest.mark.parametrize("remat", [False, True])
def test_depth_1024_is_finite_at_initialisation(getkey, remat):
    model = ResidualMLP(16, 8, width=64, depth=1024, remat=remat, key=getkey())
    x = 10.0 * jr.normal(getkey(), (4, 16))
    loss, grads = eqx.filter_jit(eqx.filter_value_and_grad(_loss))(model, x)
    assert jnp.isfinite(loss)
    assert tree_finite(grads)
    # The deepest block still receives gradient through the identity skips.
    assert jnp.any(grads.blocks.linears[0].weight[-1] != 0)


def test_remat_gives_the_same_gradients(getkey):
    key, x = getkey(), jr.normal(getkey(), (4, 5))
    plain = ResidualMLP(5, 3, width=16, depth=12, key=key)
    remat = ResidualMLP(5, 3, width=16, depth=12, remat=True, key=key)
    grads = (jax.tree.leaves(_grad(m, x)) for m in (plain, remat))
    assert tree_allclose(*grads)


def test_gradients_match_finite_differences(getkey):
    model = ResidualMLP(3, 2, width=8, depth=8, key=getkey())
    params, static = eqx.partition(model, eqx.is_array)
    x = jr.normal(getkey(), (4, 3))

    def loss(flat_block_weight):
        p = eqx.tree_at(lambda m: m.blocks.linears[1].weight, params, flat_block_weight)
        return _loss(eqx.combine(p, static), x)

    # float32 central differences: eps 1e-2 keeps round-off (~1e-7/eps) and truncation
    # (~eps²) errors both near 1e-4, well inside the 2e-2 tolerance.
    check_grads(
        loss,
        (params.blocks.linears[1].weight,),
        order=1,
        modes=("rev",),
        eps=1e-2,
        atol=2e-2,
        rtol=2e-2,
    )


def test_initialisation_matches_the_reference(getkey):
    model = ResidualMLP(100, 10, width=64, depth=8, key=getkey())
    for weight, fan_in in ((model.stem.weight, 100), (model.blocks.linears[2].weight, 64)):
        bound = 1 / jnp.sqrt(fan_in)
        assert jnp.all(jnp.abs(weight) <= bound)
        assert jnp.max(jnp.abs(weight)) > 0.9 * bound  # uniform, not a narrower law
    assert model.stem.bias is not None and jnp.all(model.stem.bias == 0)
    assert model.blocks.linears[0].weight.shape == (2, 64, 64)  # stacked on a leading axis
    assert model.blocks.norms[0].eps == 1e-6


def test_same_key_same_network(getkey):
    key = getkey()
    assert tree_allclose(ResidualMLP(3, 3, depth=8, key=key), ResidualMLP(3, 3, depth=8, key=key))


@pytest.mark.parametrize("depth", [0, -4, 2, 6, 1023])
def test_bad_depth_is_rejected(getkey, depth):
    with pytest.raises(ValueError, match=f"depth must be a positive multiple of 4.*got {depth}"):
        ResidualMLP(3, 3, depth=depth, key=getkey())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0), "width"),
        (dict(in_size=0), "in_size"),
        (dict(out_size=-1), "out_size"),
        (dict(scan_unroll=0), "scan_unroll"),
        (dict(scan_unroll=2.5), "scan_unroll"),
    ],
)
def test_bad_sizes_are_rejected(getkey, kwargs, match):
    args = dict(in_size=3, out_size=3) | kwargs
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match=match):
        ResidualMLP(args.pop("in_size"), args.pop("out_size"), key=getkey(), **args)


@pytest.mark.usefixtures("without_type_checks")
def test_numpy_integer_sizes_build_the_same_networks(getkey):
    key, as_numpy = getkey(), lambda sizes: {k: np.int64(v) for k, v in sizes.items()}
    sizes = dict(in_size=3, out_size=2, width=8, depth=8, scan_unroll=2)
    plain, numpy = ResidualMLP(**sizes, key=key), ResidualMLP(**as_numpy(sizes), key=key)
    assert tree_allclose(plain, numpy) and type(numpy.width) is int
    sizes = dict(obs_size=3, goal_size=2, action_size=2, width=8)
    plain = TanhGaussianActor(**sizes, head_norm=True, key=key)
    numpy = TanhGaussianActor(**as_numpy(sizes), head_norm=True, key=key)
    assert tree_allclose(plain, numpy) and type(numpy.action_size) is int
    sizes = dict(obs_size=3, action_size=2, goal_size=2, num_outputs=5, num_critics=2, width=8)
    plain, numpy = QEnsemble(**sizes, key=key), QEnsemble(**as_numpy(sizes), key=key)
    assert tree_allclose(plain, numpy) and type(numpy.num_critics) is int
    sizes = dict(obs_size=3, action_size=2, goal_size=2, repr_dim=4, width=8)
    plain = ContrastiveCritic(**sizes, key=key)
    assert tree_allclose(plain, ContrastiveCritic(**as_numpy(sizes), key=key))
    with pytest.raises(ValueError, match="scan_unroll must be a positive integer, got 2.5"):
        ResidualMLP(3, 2, scan_unroll=2.5, key=key)  # pyright: ignore[reportArgumentType]
    # The public block alone too (NumPy ints failed inside Equinox, 0 with a ZeroDivisionError).
    assert tree_allclose(ResidualBlock(8, key=key), ResidualBlock(np.int64(8), key=key))
    for bad in (0, 2.0):
        with pytest.raises(ValueError, match=f"width must be a positive integer, got {bad}"):
            ResidualBlock(bad, key=key)  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda k: TanhGaussianActor(3, 2, 0, key=k),
            "action_size must be a positive integer, got 0",
        ),
        (lambda k: ContrastiveCritic(3, 2, 2, repr_dim=0, key=k), "repr_dim must be .*got 0"),
        (lambda k: ContrastiveCritic(0, 2, 2, key=k), "obs_size must be .*got 0"),
        (lambda k: QEnsemble(3, 2, 2, num_outputs=0, key=k), "num_outputs must be .*got 0"),
        (lambda k: QEnsemble(3, 2, 2, 1, num_critics=0, key=k), "num_critics must be .*got 0"),
        (lambda k: QEnsemble(3, True, 2, 1, key=k), "action_size must be .*got True"),
    ],
)
def test_network_sizes_are_named_when_bad(getkey, make, match):
    # Each size by its own name, not as the out_size of a ResidualMLP built from it.
    with pytest.raises(ValueError, match=match):
        make(getkey())


def test_wrong_input_shape_is_rejected(getkey):
    model = ResidualMLP(3, 2, key=getkey())
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        model(jnp.ones(4))
    # Under the test suite's runtime type checking the annotation catches it first.
    with pytest.raises((ValueError, jaxtyping.TypeCheckError)):
        model(jnp.ones((2, 3)))


def test_without_layer_norm_the_stack_has_no_norm(getkey):
    model = ResidualMLP(3, 2, depth=4, layer_norm=False, key=getkey())
    assert not any(
        isinstance(m, eqx.nn.LayerNorm)
        for m in jax.tree.leaves(model, is_leaf=lambda m: isinstance(m, eqx.nn.LayerNorm))
    )


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_energy_gradients_finite_where_phi_equals_psi(getkey, name):
    phi = jr.normal(getkey(), (4, 6))
    for psi in (phi, jnp.zeros_like(phi)):
        grads = jax.grad(lambda p, q: jnp.sum(pairwise_energy(p, q, name)), argnums=(0, 1))(
            phi if psi is phi else psi, psi
        )
        assert tree_finite(grads)


@pytest.mark.parametrize("name", ["sq_l2", "l2"])
def test_distance_gradients_match_those_of_the_differences(getkey, name):
    """The distances' derivative is written as matmuls (no b × c × dim tensor); it must
    agree with differentiating the explicit differences, in both modes and to second order."""
    phi, psi = jr.normal(getkey(), (5, 7)), jr.normal(getkey(), (3, 7))
    weights = jr.normal(getkey(), (5, 3))
    sq = lambda p, q: jnp.sum(jnp.square(p[:, None] - q[None]), -1)  # noqa: E731
    reference = {"sq_l2": lambda p, q: -sq(p, q), "l2": lambda p, q: -jnp.sqrt(sq(p, q) + 1e-6)}
    loss = lambda p, q: jnp.sum(weights * pairwise_energy(p, q, name))  # noqa: E731
    expected = lambda p, q: jnp.sum(weights * reference[name](p, q))  # noqa: E731
    for mode in (jax.grad, jax.jacfwd):
        got = mode(loss, argnums=(0, 1))(phi, psi)
        want = mode(expected, argnums=(0, 1))(phi, psi)
        assert tree_allclose(got, want, rtol=1e-5, atol=1e-5), mode
    hessian = jax.hessian(loss)(phi, psi)
    assert tree_allclose(hessian, jax.hessian(expected)(phi, psi), rtol=1e-4, atol=1e-4)


def test_energies_match_their_definitions(getkey):
    phi, psi = jr.normal(getkey(), (3, 5)), jr.normal(getkey(), (4, 5))
    diff = phi[:, None] - psi[None]
    sq = jnp.sum(diff**2, -1)
    norms = jnp.linalg.norm(phi, axis=-1)[:, None] * jnp.linalg.norm(psi, axis=-1)[None, :]
    cos = (phi @ psi.T) / norms
    expected = {"l2": -jnp.sqrt(sq), "sq_l2": -sq, "dot": phi @ psi.T, "cosine": cos}
    for name, value in expected.items():
        assert jnp.allclose(pairwise_energy(phi, psi, name), value, atol=1e-4), name


def test_cosine_normalises_each_row_alone(getkey):
    phi, psi = jr.normal(getkey(), (3, 5)), jr.normal(getkey(), (4, 5))
    for scale in (100.0, 1e-4):  # down too: a row of norm near 1e-3 is still unit
        scaled = phi.at[0].multiply(scale)
        assert jnp.allclose(
            pairwise_energy(phi, psi, "cosine"), pairwise_energy(scaled, psi, "cosine"), atol=1e-5
        ), scale
    tiny = phi[:1] * 1e-4
    assert pairwise_energy(tiny, tiny, "cosine")[0, 0] == pytest.approx(1.0, abs=1e-5)
    # A zero row: similarity 0 and finite gradients.
    zero = phi.at[0].set(0.0)
    assert jnp.all(pairwise_energy(zero, psi, "cosine")[0] == 0)
    grad = jax.grad(lambda x: pairwise_energy(x, psi, "cosine").sum())(zero)
    assert jnp.all(jnp.isfinite(grad))


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_energies_refuse_what_is_not_two_batches_of_representations(name):
    energy = inspect.unwrap(ENERGIES[name])  # without the test suite's runtime type checks
    for phi, psi in [
        (jnp.ones((4, 4, 4)), jnp.ones((4, 4, 4))),  # broadcast into a (4, 4, 4) result
        (jnp.ones(3), jnp.ones(3)),  # a scalar for dot and cosine
        (jnp.ones((2, 3)), jnp.ones((5, 4))),
    ]:
        with pytest.raises(ValueError, match=r"two batches.*got shapes"):
            energy(phi, psi)


def test_unknown_energy_is_rejected(getkey):
    with pytest.raises(ValueError, match="'manhattan'"):
        energy_fn("manhattan")
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match="manhattan"):
        ContrastiveCritic(3, 2, 2, energy="manhattan", key=getkey())  # pyright: ignore


def test_critic_logits_and_diagonal(getkey):
    critic = ContrastiveCritic(4, 2, 3, repr_dim=8, width=16, depth=8, key=getkey())
    obs, act, goal = (jr.normal(getkey(), (5, n)) for n in (4, 2, 3))
    logits = critic.logits(obs, act, goal)
    assert logits.shape == (5, 5)
    assert jnp.allclose(jnp.diag(logits), critic(obs, act, goal), atol=1e-5)
    assert jnp.all(logits <= 0)  # negative distances
    assert critic.logits(obs, act, goal[:2]).shape == (5, 2)


def test_critic_rejects_wrong_sizes(getkey):
    critic = ContrastiveCritic(4, 2, 3, width=8, key=getkey())
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        critic.logits(jnp.ones((5, 4)), jnp.ones((5, 3)), jnp.ones((5, 3)))


def _actor(getkey):
    return TanhGaussianActor(4, 2, 3, width=16, depth=8, key=getkey())


def test_actor_log_prob_is_finite_at_the_action_bounds(getkey):
    actor = _actor(getkey)
    obs, goal = jr.normal(getkey(), (4, 4)), jr.normal(getkey(), (4, 2))
    for action in (jnp.ones((4, 3)), -jnp.ones((4, 3)), jnp.zeros((4, 3))):
        logp, grads = eqx.filter_value_and_grad(lambda a, act: jnp.sum(a.log_prob(obs, goal, act)))(
            actor, action
        )
        assert jnp.all(jnp.isfinite(logp))
        assert tree_finite(grads)
    # Half-precision actions: the clip at 1 − 1e-6 is taken in float32 (in bfloat16 it is 1).
    for dtype in (jnp.bfloat16, jnp.float16):
        near_one = jnp.full((4, 3), 0.999, dtype)
        logp = actor.log_prob(obs, goal, near_one)
        assert jnp.all(jnp.isfinite(logp))
        assert jnp.allclose(logp, actor.log_prob(obs, goal, near_one.astype(jnp.float32)))


def test_actor_sample_log_prob_agrees_with_log_prob(getkey):
    actor = _actor(getkey)
    obs, goal = jr.normal(getkey(), (64, 4)), jr.normal(getkey(), (64, 2))
    action, logp = actor.sample(obs, goal, key=getkey())
    assert action.shape == (64, 3) and logp.shape == (64,)
    assert jnp.all(jnp.abs(action) < 1)
    interior = jnp.all(jnp.abs(action) < 0.999, axis=-1)
    assert jnp.allclose(
        jnp.where(interior, actor.log_prob(obs, goal, action), 0.0),
        jnp.where(interior, logp, 0.0),
        atol=1e-3,
    )


def test_actor_log_prob_integrates_to_one():
    """The 1-D tanh-Gaussian density, integrated over actions tanh(u), |u| < 7, has the
    Gaussian's mass on that interval (the tanh correction is exact)."""
    actor = TanhGaussianActor(1, 1, 1, width=8, depth=4, key=jr.key(3))
    u = jnp.linspace(-7.0, 7.0, 100_001)
    obs = jnp.full((u.shape[0], 1), 0.3)
    # ∫ p(a) da with a = tanh(u): da = (1 - tanh(u)²) du; |u| < 7 keeps |a| < 1 - 1e-6.
    density = jnp.exp(actor.log_prob(obs, obs, jnp.tanh(u)[:, None])) * (1 - jnp.tanh(u) ** 2)
    mean, log_std = (x[0, 0] for x in actor(obs[:1], obs[:1]))
    cdf = jax.scipy.stats.norm.cdf
    expected = cdf((7.0 - mean) / jnp.exp(log_std)) - cdf((-7.0 - mean) / jnp.exp(log_std))
    assert jnp.abs(jnp.trapezoid(density, u) - expected) < 1e-3


def test_actor_log_std_is_bounded_and_deterministic_is_tanh_mean(getkey):
    actor = _actor(getkey)
    obs, goal = 1e3 * jr.normal(getkey(), (8, 4)), 1e3 * jr.normal(getkey(), (8, 2))
    mean, log_std = actor(obs, goal)
    assert jnp.all((log_std >= -5) & (log_std <= 2))
    assert jnp.allclose(actor.deterministic(obs, goal), jnp.tanh(mean))


@eqx.filter_jit
def _log_std(actor, obs, goal):
    return actor(obs, goal)[1]


@pytest.mark.parametrize("head_norm", [False, True])
def test_head_norm_keeps_a_deep_actors_fresh_log_std_off_its_floor(head_norm):
    # The residual stream's norm grows with depth, and the raw log-stds with it: at depth 64
    # a fresh actor may start with log-stds at the floor, where the squash has no gradient.
    obs, goal = 3 * jr.normal(jr.key(1), (512, 4)), 5 * jr.normal(jr.key(2), (512, 2))
    at_floor = []
    for seed in range(5):
        actor = TanhGaussianActor(
            4, 2, 2, width=128, depth=64, head_norm=head_norm, key=jr.key(seed)
        )
        at_floor.append(float((_log_std(actor, obs, goal) < -4.95).mean()))
    if head_norm:
        assert max(at_floor) == 0.0, at_floor
    else:
        assert max(at_floor) > 0.2, at_floor


def test_head_norm_actor_has_finite_gradients_at_depth_1024(getkey):
    actor = TanhGaussianActor(4, 2, 2, width=32, depth=1024, head_norm=True, key=getkey())
    obs, goal = 1e3 * jr.normal(getkey(), (8, 4)), jr.normal(getkey(), (8, 2))
    grads = eqx.filter_grad(lambda a: jnp.sum(a.sample(obs, goal, key=jr.key(0))[1]))(actor)
    assert tree_finite(grads)
    # Without it the actor is the trunk alone: the same function as before the option.
    plain = TanhGaussianActor(4, 2, 2, width=32, depth=8, key=jr.key(3))
    out = jax.vmap(plain.trunk)(jnp.concatenate([obs, goal], -1))
    assert jnp.array_equal(plain(obs, goal)[0], jnp.split(out, 2, -1)[0])
