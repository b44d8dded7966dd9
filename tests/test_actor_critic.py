"""What every actor-critic learner shares (`deepcrl.train.AbstractActorCritic`), checked on
both learners: compile size at any depth, and evaluation's best-of-K actions."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from deepcrl.crl import CRL, CRLConfig
from deepcrl.td import TD, TDConfig
from deepcrl.train import AbstractLearner, Tandem

from .helpers import count_eqns, random_batch

LEARNERS = {
    "crl": (CRL, CRLConfig(actor_width=8, critic_width=8, repr_dim=8)),
    "td": (TD, TDConfig(actor_width=8, critic_width=8)),
}


def _learner(name, **settings):
    make, config = LEARNERS[name]
    return make(dataclasses.replace(config, **settings))


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_update_compiles_to_the_same_program_at_depth_4_and_1024(getkey, name):
    """The residual stacks are scanned: depth adds no equations to the whole update (actor,
    critics, targets and temperature)."""
    sizes = []
    for depth in (4, 1024):
        learner = _learner(name, actor_depth=depth, critic_depth=depth)
        state = eqx.filter_eval_shape(
            lambda k, n=learner: n.init(k, obs_size=4, goal_size=2, action_size=2), getkey()
        )
        jaxpr = jax.make_jaxpr(lambda s, b, k, n=learner: n.update(s, b, k))(
            state, random_batch(getkey, 4), getkey()
        )
        sizes.append(count_eqns(jaxpr.jaxpr))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_best_of_k_evaluation_takes_the_critics_favourite(getkey, name):
    one, eight = _learner(name), _learner(name, eval_candidates=8)
    state = one.init(getkey(), obs_size=4, goal_size=2, action_size=2)
    batch = random_batch(getkey, 64)
    plain = one.act_eval(state, batch.obs, batch.goal)
    np.testing.assert_array_equal(plain, state.eval_actor.deterministic(batch.obs, batch.goal))
    best = jax.jit(eight.act_eval)(state, batch.obs, batch.goal)
    assert best.shape == plain.shape and bool(jnp.all(jnp.abs(best) <= 1.0))
    # tanh(mean) is one of the candidates, so the chosen action is valued at least as high;
    # with a fresh critic another candidate wins for some rows.
    v_plain = one.value(state, batch.obs, plain, batch.goal)
    v_best = one.value(state, batch.obs, best, batch.goal)
    assert bool(jnp.all(v_best >= v_plain - 1e-6))
    assert bool(jnp.any(v_best > v_plain + 1e-6))
    # Deterministic: no key, the same actions every time.
    np.testing.assert_array_equal(best, jax.jit(eight.act_eval)(state, batch.obs, batch.goal))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_eval_candidates_must_be_a_positive_integer(bad):
    # Under the test suite's runtime type checks a float is refused by its annotation.
    with pytest.raises((ValueError, TypeCheckError), match="eval_candidates"):
        CRLConfig(eval_candidates=bad)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_ablations_reach_every_network(getkey, name):
    """`activation` and `layer_norm` change the actor and every critic network, and the
    update runs finite without norms."""
    learner = _learner(name, activation="relu", layer_norm=False)
    state = learner.init(getkey(), obs_size=4, goal_size=2, action_size=2)
    assert not _layer_norms(state) and _layer_norms(default := _default(name, getkey))
    trunks = [state.actor.trunk, *_residual_mlps(state.critic)]
    assert len(trunks) >= 2 and all(t.activation is jax.nn.relu for t in trunks)
    assert all(t.activation is jax.nn.swish for t in _residual_mlps(default.critic))
    # Runs saved before these options existed describe the default networks without them.
    assert {"activation", "layer_norm", "actor_head_norm"}.isdisjoint(_learner(name).describe())
    assert _learner(name, actor_head_norm=True).describe()["actor_head_norm"] is True
    assert learner.describe()["activation"] == "relu" and not learner.describe()["layer_norm"]
    _, metrics = eqx.filter_jit(learner.update)(state, random_batch(getkey, 8), getkey())
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())


def _default(name, getkey):
    return _learner(name).init(getkey(), obs_size=4, goal_size=2, action_size=2)


def _layer_norms(tree):
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, eqx.nn.LayerNorm))
    return [x for x in leaves if isinstance(x, eqx.nn.LayerNorm)]


def _residual_mlps(tree):
    from deepcrl.nn import ResidualMLP

    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, ResidualMLP))
    return [x for x in leaves if isinstance(x, ResidualMLP)]


@pytest.mark.parametrize("bad", [{"activation": "gelu"}, {"layer_norm": 1}, {"actor_head_norm": 1}])
def test_ablation_options_are_checked(bad):
    with pytest.raises((ValueError, TypeCheckError), match=next(iter(bad))):
        CRLConfig(**bad)


class _Shift(AbstractLearner):
    """A learner of one number: acts `shift` (+ noise when exploring), adds the batch's
    reward sum and a draw of its key to it on every update."""

    config: float

    def init(self, key, *, obs_size, goal_size, action_size):
        return jnp.full((action_size,), self.config)

    def update(self, state, batch, key):
        state = state + batch.reward.sum() + jax.random.uniform(key)
        return state, {"shift": state[0]}

    def act(self, state, obs, goal, key):
        return state[None] + jax.random.uniform(key, obs.shape[:1] + state.shape)

    def act_eval(self, state, obs, goal):
        return jnp.broadcast_to(state, obs.shape[:1] + state.shape)

    def value(self, state, obs, action, goal):
        return jnp.full(obs.shape[:1], state[0])

    def describe(self):
        return {"learner": "shift", "shift": self.config}


def test_tandem_collects_with_one_learner_and_trains_both(getkey):
    """`Tandem`: actions while collecting are the collector's; evaluation and values the
    learner's; an update is each learner's own update on the same batch, with its own key."""
    collector, learner = _Shift(0.25), _Shift(-0.5)
    tandem = Tandem(collector=collector, learner=learner)
    state = tandem.init(getkey(), obs_size=4, goal_size=2, action_size=2)
    batch, key = random_batch(getkey, 8, reward=jnp.arange(8.0)), getkey()
    obs, goal = batch.obs, batch.goal
    np.testing.assert_array_equal(
        tandem.act(state, obs, goal, key), collector.act(state.collector, obs, goal, key)
    )
    np.testing.assert_array_equal(tandem.act_eval(state, obs, goal), jnp.full((8, 2), -0.5))
    np.testing.assert_array_equal(tandem.value(state, obs, batch.action, goal), jnp.full(8, -0.5))
    new, metrics = tandem.update(state, batch, key)
    collector_key, learner_key = jax.random.split(key)
    np.testing.assert_array_equal(
        new.collector, collector.update(state.collector, batch, collector_key)[0]
    )
    np.testing.assert_array_equal(new.learner, learner.update(state.learner, batch, learner_key)[0])
    assert new.collector[0] - 0.25 != new.learner[0] + 0.5  # different keys
    assert metrics == {"shift": new.learner[0], "collector_shift": new.collector[0]}
    # The run's length reaches both learners' schedules.
    cosine = _learner("crl", lr_schedule="cosine")
    both = Tandem(collector=cosine, learner=cosine).with_total_updates(120)
    assert both.collector.total_updates == both.learner.total_updates == 120
    assert tandem.describe() == {
        "learner": "Tandem",
        "collector": {"learner": "shift", "shift": 0.25},
        "trained": {"learner": "shift", "shift": -0.5},
    }
