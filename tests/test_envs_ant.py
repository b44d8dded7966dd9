import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from deepcrl.crl import CRL, CRLConfig
from deepcrl.envs import AntBody, Maze
from deepcrl.train import TrainConfig, Trainer

N_ENVS = 4


@pytest.fixture(scope="module")
def env() -> Maze:
    return Maze("u_maze", body="ant", episode_length=30)


@pytest.fixture(scope="module")
def batched(env):
    """`(reset, step)` over `N_ENVS` envs, compiled once: every test below reuses them."""
    return jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))


def with_torso(state, z, quat=None):
    """The batch of states with every torso moved to height `z` (and orientation `quat`), at
    rest."""
    qpos = state.data.qpos.at[:, 2].set(z)
    if quat is not None:
        qpos = qpos.at[:, 3:7].set(jnp.asarray(quat, dtype=jnp.float32))
    qvel = jnp.zeros_like(state.data.qvel)
    return eqx.tree_at(lambda s: (s.data.qpos, s.data.qvel), state, (qpos, qvel))


def test_sizes(env):
    assert (env.obs_size, env.action_size, env.goal_size) == (29, 8, 2)
    assert env.goal_indices == (0, 1)
    assert env.dt == pytest.approx(0.05)
    assert (env.model.nq, env.model.nv, env.model.nu) == (15, 14, 8)


def test_reset(batched):
    reset, _ = batched
    state = reset(jr.split(jr.key(0), N_ENVS))
    obs = np.asarray(state.obs)
    assert obs.shape == (N_ENVS, 29)
    # Torso over the R cell (1, 1) = (4, 4), noise ±0.1; height 0.55 ± 0.1; unit quaternion.
    np.testing.assert_allclose(obs[:, :2], 4.0, atol=0.1 + 1e-5)
    np.testing.assert_allclose(obs[:, 2], 0.55, atol=0.1 + 1e-5)
    np.testing.assert_allclose(np.linalg.norm(obs[:, 3:7], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(obs[:, :15], np.asarray(state.data.qpos))


def test_random_actions_stay_finite(batched):
    reset, step = batched
    state = reset(jr.split(jr.key(1), N_ENVS))
    for key in jr.split(jr.key(2), 40):
        state = step(state, jr.uniform(key, (N_ENVS, 8), minval=-1.0, maxval=1.0))
        assert np.all(np.isfinite(np.asarray(state.obs)))
        assert np.all(np.isfinite(np.asarray(state.metrics["dist"])))
    # Each episode has its own length now (early termination), but resets still count.
    assert np.all(np.asarray(state.traj_id) >= 1)


@pytest.mark.parametrize("z, quat", [(0.1, None), (1.6, None), (0.4, (0.0, 1.0, 0.0, 0.0))])
def test_terminates_outside_the_healthy_range(batched, z, quat):
    reset, step = batched
    state = reset(jr.split(jr.key(3), N_ENVS))
    state = step(state, jnp.zeros((N_ENVS, 8)))
    assert not np.any(np.asarray(state.done))
    # Fallen (torso low), thrown (torso high) or flipped (upside down: only feet touch the
    # floor, so the torso sinks below the healthy range): each episode ends within a few steps.
    after = with_torso(state, z, quat)
    ended = np.zeros(N_ENVS, dtype=bool)
    for _ in range(12):
        after = step(after, jnp.zeros((N_ENVS, 8)))
        done = np.asarray(after.done)
        # The new episode starts upright over the start cell.
        np.testing.assert_allclose(np.asarray(after.obs)[done, 2], 0.55, atol=0.1 + 1e-5)
        np.testing.assert_allclose(np.asarray(after.obs)[done, :2], 4.0, atol=0.1 + 1e-5)
        ended |= done
    assert np.all(ended)
    np.testing.assert_array_equal(after.traj_id, state.traj_id + 1)  # one reset each


def test_standing_still_does_not_terminate(batched):
    reset, step = batched
    state = reset(jr.split(jr.key(4), N_ENVS))
    for _ in range(25):
        state = step(state, jnp.zeros((N_ENVS, 8)))
        assert not np.any(np.asarray(state.done))
    z = np.asarray(state.obs)[:, 2]
    assert np.all((z > 0.3) & (z < 0.8))


def test_observation_at(env):
    obs = env.observation_at(jnp.array([[4.0, 8.0]]))
    assert obs.shape == (1, 29)
    np.testing.assert_allclose(obs[0, :3], [4.0, 8.0, 0.55])
    np.testing.assert_array_equal(obs[0, 15:], 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(healthy_z=(1.0, 0.2)), "healthy_z"),
        (dict(timestep=0.0), "timestep must be a finite positive number, got 0.0"),
        (dict(gear=float("inf")), "gear must be a finite positive number, got inf"),
        (dict(n_substeps=0), "n_substeps must be an integer >= 1, got 0"),
        (dict(reset_noise=-0.1), "reset_noise must be a finite number >= 0, got -0.1"),
    ],
)
def test_invalid_ant_settings(kwargs, match):
    # Each would otherwise fail only once traced (a division by zero) or give NaN states.
    with pytest.raises(ValueError, match=match):
        AntBody(**kwargs)


def test_evaluation_counts_an_episode_only_to_its_end():
    """An Ant that leaves the healthy range ends its episode and the maze auto-resets to a
    new start and goal: evaluation counts each episode up to its own end, as a step-by-step
    rollout of the same actions does."""
    # A low ceiling ends some episodes within a few steps (the torso starts at 0.75 ± 0.1),
    # and a goal threshold wider than the maze makes every step a success, so an episode's
    # time at goal is its length. Short episodes keep the two programs' float differences
    # (contacts are chaotic) far below the tolerances.
    env = Maze(
        "u_maze", body=AntBody(healthy_z=(0.2, 0.8)), episode_length=12, goal_threshold=100.0
    )
    trainer = Trainer(
        CRL(CRLConfig(actor_width=16, critic_width=16, repr_dim=8)),
        env,
        env,
        TrainConfig(
            num_envs=4, unroll_length=10, batch_size=8, buffer_capacity=40, num_eval_envs=8
        ),
    )
    state = eqx.filter_jit(trainer.init)(jr.key(0))
    episodes = eqx.filter_jit(trainer.evaluate_episodes)(state, jr.key(1))

    def rollout(env_state):
        def step(s, _):
            obs, goal = env.net_inputs(s.obs, s.goal)
            nxt = jax.vmap(env.step)(s, trainer.learner.act_eval(state.learner, obs, goal))
            return nxt, (nxt.done, nxt.metrics["dist"], env.achieved_goal(s.obs))

        return jax.lax.scan(step, env_state, None, length=env.episode_length)[1]

    start = jax.vmap(env.reset)(jr.split(jr.key(1), 8))
    done, dist, here = map(np.asarray, eqx.filter_jit(rollout)(start))
    end = done.argmax(0)  # the step that ends each episode (the time limit at the latest)
    assert (end < env.episode_length - 1).any() and (end == env.episode_length - 1).any()
    np.testing.assert_array_equal(episodes.time_at_goal, end + 1)
    assert np.all(np.asarray(episodes.success))
    envs = np.arange(8)
    np.testing.assert_allclose(episodes.final_dist, dist[end, envs], atol=1e-3)
    np.testing.assert_allclose(episodes.last, here[end, envs], atol=1e-3)
    np.testing.assert_array_equal(episodes.goal, start.goal)
