"""The goal-conditioned TD learner: targets, support, classification critics, updates."""

import dataclasses
import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from deepcrl.losses import MSE, HLGauss, TwoHot
from deepcrl.td import TD, TDConfig, td_target

from .helpers import TINY_FLAGS, random_batch, tree_allclose, tree_finite

SMALL = TDConfig(actor_width=16, critic_width=16, actor_lr=1e-3, critic_lr=1e-3)


def _init(getkey, config=SMALL):
    learner = TD(config)
    return learner, learner.init(getkey(), obs_size=4, goal_size=2, action_size=2)


def test_support_follows_the_reward_and_discount():
    assert TDConfig().support == (0.0, 1.0)  # terminal at the goal: Q = E[γ^(T−1)]
    assert TDConfig(terminal_at_goal=False, discount=0.99).support == pytest.approx((0, 100))
    assert TDConfig(v_min=-1.0, v_max=2.0).support == (-1.0, 2.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(v_min=1.0, v_max=1.0), "v_min < v_max"),
        (dict(v_max=0.5), "cannot hold the returns"),
        (dict(terminal_at_goal=False, v_max=10.0), r"returns \[0.0, 100\]"),
        (dict(v_max=float("inf")), "v_max"),
        (dict(critic_depth=6), "critic_depth"),
        (dict(num_bins=1), "num_bins"),
        (dict(tau=0.0), "tau"),
        (dict(discount=1.0), "discount"),
        (dict(initial_alpha=float("nan")), "initial_alpha"),
        # The value loss's own checks, at the config and not at the first update.
        (dict(sigma_ratio=20.0), r"sigma_ratio must be finite and in \[1e-06, 10\]"),
        (dict(v_min=-1e38), "too wide for float32"),
    ],
)
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeCheckError), match=match):
        TDConfig(**kwargs)


def test_targets_terminate_at_the_goal_and_are_clipped_and_counted(getkey):
    learner, state = _init(getkey, dataclasses.replace(SMALL, value_loss="mse"))
    # A target critic that says 5 everywhere: bootstrapped targets overflow the support.
    big = eqx.tree_at(lambda c: c.nets.head.bias, state.target_critic, jnp.full((2, 1), 5.0))
    reward = jnp.array([1.0, 0.0, 1.0, 0.0])
    batch = random_batch(getkey, 4, reward)
    target, clipped, next_q = td_target(
        learner.value_loss, learner.config, big, state.actor, jnp.ones(()), batch, getkey()
    )
    assert jnp.all(jnp.isfinite(target)) and jnp.all((target >= 0) & (target <= 1))
    # At the goal the return ends: y = r = 1, whatever the next value.
    assert jnp.all(target[reward == 1] == 1.0)
    assert jnp.all(clipped == jnp.array([0.0, 1.0, 0.0, 1.0]))  # 0.99 × 5 > 1: clipped
    assert jnp.all(next_q > 4.0)


@pytest.mark.parametrize("terminal_at_goal", [True, False])
def test_targets_bootstrap_the_smaller_twin_discounted_minus_the_entropy_term(
    getkey, terminal_at_goal
):
    # Target critics that say 0.3 and 0.5 everywhere (MSE: the value is the output): the
    # bootstrapped value is the smaller, discounted by γ, continued unless the goal ends the
    # return, and the soft target subtracts α log π of the next action.
    config = dataclasses.replace(
        SMALL,
        value_loss="mse",
        discount=0.9,
        terminal_at_goal=terminal_at_goal,
        soft_target=True,
        v_min=-20.0,
        v_max=20.0,  # nothing clipped
    )
    learner, state = _init(getkey, config)
    head = state.target_critic.nets.head
    twins = eqx.tree_at(
        lambda c: (c.nets.head.weight, c.nets.head.bias),
        state.target_critic,
        (jnp.zeros_like(head.weight), jnp.array([[0.5], [0.3]])),
    )
    reward = jnp.array([1.0, 0.0, 1.0, 0.0])
    batch, key, alpha = random_batch(getkey, 4, reward), getkey(), jnp.asarray(0.5)
    args = (twins, state.actor, alpha, batch, key)
    hard_config = dataclasses.replace(config, soft_target=False)
    hard, _, next_q = td_target(learner.value_loss, hard_config, *args)
    soft, clipped, _ = td_target(learner.value_loss, config, *args)
    _, log_prob = state.actor.sample(batch.next_obs, batch.goal, key=key)
    continues = 1.0 - reward if terminal_at_goal else jnp.ones(4)
    np.testing.assert_allclose(next_q, 0.3, rtol=1e-6)
    np.testing.assert_allclose(hard, reward + 0.9 * continues * 0.3, rtol=1e-6)
    np.testing.assert_allclose(soft, reward + 0.9 * continues * (0.3 - 0.5 * log_prob), rtol=1e-5)
    assert not np.asarray(clipped).any() and not np.allclose(soft, hard)


def test_the_entropy_term_enters_before_the_histogram(getkey):
    """A soft target with and without `α log π` gives different histograms."""
    config = dataclasses.replace(SMALL, soft_target=True, v_min=-5.0, v_max=5.0)
    learner, state = _init(getkey, config)
    batch, key = random_batch(getkey, 8), getkey()
    loss = learner.value_loss
    args = (state.target_critic, state.actor)
    soft, _, _ = td_target(loss, config, *args, jnp.ones(()), batch, key)
    hard_config = dataclasses.replace(config, soft_target=False)
    hard, _, _ = td_target(loss, hard_config, *args, jnp.ones(()), batch, key)
    assert not jnp.allclose(soft, hard)
    assert not jnp.allclose(loss.target_probs(soft), loss.target_probs(hard))


@pytest.mark.parametrize(
    "loss, kind, outputs", [("hl_gauss", HLGauss, 51), ("two_hot", TwoHot, 51), ("mse", MSE, 1)]
)
def test_critics_learn_a_fixed_target(getkey, loss, kind, outputs):
    """The critic loss is one argument; with each, when every step of the batch reaches its
    goal, all critics' values go to 1."""
    config = dataclasses.replace(SMALL, value_loss=loss, critic_lr=3e-3)
    learner, state = _init(getkey, config)
    assert isinstance(learner.value_loss, kind)
    assert state.critic.nets.head.weight.shape == (2, outputs, 16)  # twin critics' logits
    batch = random_batch(getkey, 16, jnp.ones((16,)))
    step = eqx.filter_jit(lambda s, k: learner.update(s, batch, k))
    for _ in range(150):
        state, metrics = step(state, getkey())
    assert metrics["target_q"] == 1.0 and metrics["target_clipped"] == 0.0
    assert metrics["q_min"] > 0.9, metrics
    assert tree_finite(state)


def test_target_critics_follow_by_polyak_averaging(getkey):
    learner, state = _init(getkey, dataclasses.replace(SMALL, tau=0.1))
    new, _ = eqx.filter_jit(lambda s, k: learner.update(s, random_batch(getkey, 8), k))(
        state, getkey()
    )
    params = lambda c: eqx.filter(c, eqx.is_inexact_array)  # noqa: E731
    expected = jax.tree.map(
        lambda old, cur: 0.9 * old + 0.1 * cur, params(state.target_critic), params(new.critic)
    )
    assert tree_allclose(params(new.target_critic), expected, rtol=1e-6, atol=1e-7)
    assert not tree_allclose(params(new.critic), params(state.critic))


@pytest.mark.usefixtures("keep_cache_config")
def test_command_line_trains_and_reports(tmp_path, monkeypatch, capsys, examples):
    """`examples/train_td.py point` with tiny settings: trains two seeds and reports them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    flags = TINY_FLAGS | {"run.out-dir": tmp_path / "run", "run.num-seeds": 2}
    argv = ["train_td.py", "point", "--run.no-plots", "--run.no-progress"]
    monkeypatch.setattr(sys, "argv", argv + [f"--{k}={v}" for k, v in flags.items()])
    examples("train_td").main()
    out = capsys.readouterr().out
    assert "Final evaluation after 240 env steps: success" in out
    assert "Over 2 seeds: final success" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["learner"]["learner"] == "TD"
    assert saved["config"]["train"]["batch_size"] == TINY_FLAGS["train.batch-size"]
