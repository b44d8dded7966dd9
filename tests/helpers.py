import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from deepcrl.train import Batch


def tree_allclose(x, y, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """True when two pytrees have the same structure and allclose leaves."""
    # tree_equal gives False on a structure mismatch, else a (possibly traced) boolean array.
    return bool(eqx.tree_equal(x, y, typematch=True, rtol=rtol, atol=atol))


def tree_finite(tree) -> bool:
    """True when every floating leaf of `tree` is finite."""
    leaves = [x for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]
    return all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)


def count_eqns(jaxpr) -> int:
    """Number of equations in a jaxpr, sub-jaxprs (scan bodies, pjit, checkpoint) included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    total += count_eqns(getattr(inner, "jaxpr", inner))
    return total


def random_batch(getkey, n: int, reward=None) -> Batch:
    """A batch of `n` random rows (4-d observations, 2-d actions and goals), each next
    observation a small step from its observation; rewards 0 unless given."""
    obs = jr.normal(getkey(), (n, 4))
    return Batch(
        obs=obs,
        action=jr.uniform(getkey(), (n, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (n, 2)),
        next_obs=obs + 0.1 * jr.normal(getkey(), (n, 4)),
        reward=jnp.zeros((n,)) if reward is None else reward,
    )


TINY_FLAGS = {
    "learner.actor-depth": 4, "learner.critic-depth": 4,
    "learner.actor-width": 16, "learner.critic-width": 16,
    "learner.actor-lr": 1e-3, "learner.critic-lr": 1e-3, "learner.alpha-lr": 3e-4,
    "learner.eval-actor-decay": 0.5, "learner.lr-schedule": "cosine",
    "learner.lr-decay-updates": 24,
    "env.chain-goals": 0.0, "env.goal-noise": 0.0, "env.episode-length": 20,
    "train.num-envs": 4, "train.unroll-length": 10, "train.sgd-steps": 3,
    "train.batch-size": 8, "train.buffer-capacity": 40, "train.num-eval-envs": 4,
    "train.random-goals": 0.0, "run.total-env-steps": 6 * 40, "run.eval-every": 2,
}  # fmt: skip
"""Command-line flags of a tiny `point` run (the learner, maze and training settings of
`tests/test_train.py`'s runs, so that the CRL command line reuses their compiled programs)."""
