import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jaxtyping import TypeCheckError

from deepcrl.crl import CRL, CRLConfig, critic_loss
from deepcrl.losses import infonce
from deepcrl.nn import pairwise_energy
from deepcrl.td import TDConfig
from deepcrl.train import Batch
from deepcrl.train._actor_critic import alpha_loss

from .helpers import random_batch, tree_allclose, tree_finite

SMALL_AGENT = CRLConfig(actor_width=16, critic_width=16, repr_dim=8, actor_lr=1e-3, critic_lr=1e-3)


def _agent(getkey, config=SMALL_AGENT):
    return CRL(config).init(getkey(), obs_size=4, goal_size=2, action_size=2)


def _batch(getkey, n):
    obs = jr.normal(getkey(), (n, 4))
    return Batch(
        obs=obs,
        action=jr.uniform(getkey(), (n, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (n, 2)),
        next_obs=obs,
        reward=jnp.zeros((n,)),
    )


def _step(config, batch):
    learner = CRL(config)
    return eqx.filter_jit(lambda s, k: learner.update(s, batch, k))


def test_critic_learns_to_classify_a_fixed_batch(getkey):
    """Gradient steps on one batch drive InfoNCE down and the diagonal accuracy to 1."""
    state = _agent(getkey)
    batch = _batch(getkey, 16)
    step = _step(SMALL_AGENT, batch)
    _, first = step(state, getkey())
    for _ in range(300):
        state, metrics = step(state, getkey())
    assert metrics["critic_loss"] < 0.5 * first["critic_loss"]
    assert metrics["categorical_accuracy"] == 1.0
    assert tree_finite(state)
    assert state.updates == 300


@pytest.mark.parametrize(
    "energy, variant, penalty",
    [("sq_l2", "backward", 0.0), ("dot", "symmetric", 0.5), ("cosine", "forward", 0.1)],
)
def test_critic_loss_is_the_configured_infonce_of_the_configured_energy(
    getkey, energy, variant, penalty
):
    config = dataclasses.replace(
        SMALL_AGENT, energy=energy, infonce_variant=variant, logsumexp_penalty=penalty
    )
    state = CRL(config).init(getkey(), obs_size=4, goal_size=2, action_size=2)
    batch = random_batch(getkey, 8)
    phi = jax.vmap(state.critic.sa_encoder)(jnp.concatenate([batch.obs, batch.action], -1))
    psi = jax.vmap(state.critic.goal_encoder)(batch.goal)
    logits = pairwise_energy(phi, psi, energy)
    loss, _ = critic_loss(state.critic, batch, config)
    expected = infonce(logits, variant=variant, logsumexp_penalty=penalty)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Another variant of the same logits is another loss: the setting is not ignored.
    other = "forward" if variant != "forward" else "backward"
    assert not np.isclose(loss, infonce(logits, variant=other, logsumexp_penalty=penalty))


def test_actor_moves_towards_higher_critic_values(getkey):
    state = _agent(getkey)
    batch = _batch(getkey, 32)
    frozen = dataclasses.replace(SMALL_AGENT, critic_lr=1e-12, alpha_lr=1e-12)
    step = _step(frozen, batch)

    def value(s):
        action = s.actor.deterministic(batch.obs, batch.goal)
        return jnp.mean(s.critic(batch.obs, action, batch.goal))

    before = value(state)
    for _ in range(100):
        state, _ = step(state, getkey())
    assert value(state) > before


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_eval_actor_is_a_running_average_of_the_actor(getkey, decay):
    config = dataclasses.replace(SMALL_AGENT, eval_actor_decay=decay)
    state = _agent(getkey, config)
    batch = _batch(getkey, 16)
    new, _ = _step(config, batch)(state, getkey())
    params = lambda actor: eqx.filter(actor, eqx.is_inexact_array)  # noqa: E731
    assert not tree_allclose(params(new.actor), params(state.actor))
    expected = jax.tree.map(
        lambda old, cur: decay * old + (1 - decay) * cur, params(state.actor), params(new.actor)
    )
    assert tree_allclose(params(new.eval_actor), expected, rtol=1e-6, atol=1e-7)
    if decay == 0.0:  # exactly the actor
        assert eqx.tree_equal(params(new.eval_actor), params(new.actor))


@settings(deadline=None, max_examples=12)
@given(st.integers(1, 10_000), st.floats(0.0, 1.0))
def test_lr_scale_is_a_cosine_from_one_to_the_final_scale(decay_updates, final):
    config = dataclasses.replace(
        SMALL_AGENT, lr_schedule="cosine", lr_decay_updates=decay_updates, lr_final_scale=final
    )
    learner = CRL(config)
    steps = jnp.linspace(0, 2 * decay_updates, 41).astype(jnp.int32)
    scale = jax.vmap(learner.lr_scale)(steps)
    assert scale[0] == pytest.approx(1.0)
    assert jnp.all(jnp.diff(scale) <= 1e-6), "the rates never rise"
    halfway = learner.lr_scale(decay_updates // 2)
    progress = (decay_updates // 2) / decay_updates
    expected = final + (1 - final) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
    assert halfway == pytest.approx(float(expected), abs=1e-5)
    # At the end of the decay and after it: the final scale.
    assert jnp.allclose(scale[20:], final, atol=1e-6)
    assert CRL(SMALL_AGENT).lr_scale(12_345) == 1.0  # no decay: constant rates
    # "Over the whole run" (the default length) follows the run's SGD steps.
    whole = CRL(dataclasses.replace(SMALL_AGENT, lr_schedule="cosine")).with_total_updates(100)
    assert whole.lr_scale(50) == pytest.approx(0.5, abs=1e-6)


def test_updates_stop_when_the_rates_have_decayed_to_zero(getkey):
    # One SGD step at the full rates, then zero: the networks stop moving, α does not.
    config = dataclasses.replace(SMALL_AGENT, lr_schedule="cosine", lr_decay_updates=1)
    batch = _batch(getkey, 16)
    step = _step(config, batch)
    start = _agent(getkey, config)
    first, metrics = step(start, getkey())
    second, later = step(first, getkey())
    params = lambda tree: eqx.filter(tree, eqx.is_inexact_array)  # noqa: E731
    assert (metrics["lr_scale"], later["lr_scale"]) == (1.0, 0.0)
    assert not tree_allclose(params(first.critic), params(start.critic))
    assert not tree_allclose(params(first.actor), params(start.actor))
    assert eqx.tree_equal(params(second.critic), params(first.critic))
    assert eqx.tree_equal(params(second.actor), params(first.actor))
    assert second.log_alpha != first.log_alpha


@pytest.mark.parametrize("entropy_gap, direction", [(1.0, 1), (-1.0, -1)])
def test_alpha_rises_when_entropy_is_below_target(entropy_gap, direction):
    # log_prob = -(target + gap): entropy above target when gap > 0.
    target = -1.0
    log_prob = jnp.full((8,), -(target - entropy_gap))
    grad = jax.grad(alpha_loss)(jnp.zeros(()), log_prob, target)
    assert jnp.sign(-grad) == direction  # gradient descent moves log α this way


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(actor_depth=6), "actor_depth"),
        (dict(critic_depth=0), "critic_depth"),
        (dict(critic_width=0), "critic_width"),
        (dict(actor_lr=0.0), "actor_lr"),
        (dict(logsumexp_penalty=-1.0), "logsumexp_penalty"),
        (dict(eval_actor_decay=1.0), "eval_actor_decay"),
        (dict(lr_decay_updates=0), "lr_decay_updates"),
        (dict(actor_lr=float("nan")), "actor_lr"),
        (dict(critic_lr=float("inf")), "critic_lr"),
        (dict(logsumexp_penalty=float("nan")), "logsumexp_penalty"),
        (dict(target_entropy_scale=float("inf")), "target_entropy_scale"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(lr_final_scale=1.5), "lr_final_scale"),
        (dict(initial_alpha=1e-50), r"initial_alpha must be a finite number in \[1e-10, "),
        (dict(initial_alpha=1e39), r"initial_alpha must be .* 10000000000.0\], got 1e\+39"),
    ],
)
def test_bad_agent_config_is_rejected(kwargs, match):
    # A value of the wrong type is caught by the runtime type checker, before __post_init__.
    with pytest.raises((ValueError, TypeCheckError), match=match):
        CRLConfig(**kwargs)


@pytest.mark.parametrize("alpha", [1e-10, 1e10])
def test_an_update_at_either_bound_of_the_initial_temperature_stays_finite(getkey, alpha):
    config = dataclasses.replace(SMALL_AGENT, initial_alpha=alpha)
    state, metrics = _step(config, _batch(getkey, 8))(_agent(getkey, config), getkey())
    assert tree_finite(state) and all(np.isfinite(v) for v in metrics.values())
    assert jnp.exp(state.log_alpha) == pytest.approx(alpha, rel=0.01)


@pytest.mark.parametrize(
    "make, name, bad, match",
    [
        (
            CRLConfig,
            "energy",
            "l3",
            r"energy must be one of \['l2', 'sq_l2', 'dot', 'cosine'\], got 'l3'",
        ),
        (
            CRLConfig,
            "infonce_variant",
            "fwd",
            r"infonce_variant must be one of .*'symmetric'\], got 'fwd'",
        ),
        (
            CRLConfig,
            "activation",
            "gelu",
            r"activation must be one of \['swish', 'relu'\], got 'gelu'",
        ),
        (
            CRLConfig,
            "lr_schedule",
            "linear",
            r"lr_schedule must be one of \['constant', 'cosine'\]",
        ),
        (
            TDConfig,
            "value_loss",
            "huber",
            r"value_loss must be one of \['hl_gauss', 'two_hot', 'mse'\]",
        ),
    ],
)
def test_unknown_names_are_refused_by_the_config(make, name, bad, match):
    # Set past the runtime type checker (which also refuses them), as a caller without it
    # meets them: at construction, not when a run first traces `update`.
    config = make()
    object.__setattr__(config, name, bad)
    with pytest.raises(ValueError, match=match):
        config.__post_init__()


def test_a_decay_to_zero_before_the_run_ends_is_refused():
    config = dataclasses.replace(SMALL_AGENT, lr_schedule="cosine", lr_decay_updates=9)
    with pytest.raises(ValueError, match="makes 12 SGD steps.*lr_decay_updates=9"):
        CRL(config).with_total_updates(12)
    CRL(config).with_total_updates(9)  # as long as the run: allowed
    CRL(dataclasses.replace(config, lr_final_scale=0.1)).with_total_updates(12)
    with pytest.raises(ValueError, match="whole run"):  # no length known: refused when used
        CRL(dataclasses.replace(config, lr_decay_updates=None)).lr_scale(0)
