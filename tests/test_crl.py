import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest
from hypothesis import given, settings, strategies as st

from deepcrl.crl import (
    Batch,
    CRLConfig,
    RunConfig,
    TrainConfig,
    Trainer,
    alpha_loss,
    init_agent,
    lr_scale,
    run,
    update,
)
from deepcrl.crl._run import _check_lr_decay, _init, _train, _warmup, seed_keys

from .helpers import tree_allclose, tree_finite

SMALL_AGENT = CRLConfig(actor_width=16, critic_width=16, repr_dim=8, actor_lr=1e-3, critic_lr=1e-3)
TINY = TrainConfig(
    agent=SMALL_AGENT,
    episode_length=20,
    num_envs=4,
    unroll_length=10,
    sgd_steps=3,
    batch_size=8,
    buffer_capacity=40,
    num_eval_envs=4,
)


def _agent(getkey, config=SMALL_AGENT):
    return init_agent(config, obs_size=4, goal_size=2, action_size=2, key=getkey())


def test_critic_learns_to_classify_a_fixed_batch(getkey):
    """Gradient steps on one batch drive InfoNCE down and the diagonal accuracy to 1."""
    state = _agent(getkey)
    batch = Batch(
        obs=jr.normal(getkey(), (16, 4)),
        action=jr.uniform(getkey(), (16, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (16, 2)),
    )
    step = eqx.filter_jit(lambda s, k: update(SMALL_AGENT, s, batch, k))
    _, first = step(state, getkey())
    for _ in range(300):
        state, metrics = step(state, getkey())
    assert metrics["critic_loss"] < 0.5 * first["critic_loss"]
    assert metrics["categorical_accuracy"] == 1.0
    assert tree_finite(state)
    assert state.updates == 300


def test_actor_moves_towards_higher_critic_values(getkey):
    state = _agent(getkey)
    batch = Batch(
        obs=jr.normal(getkey(), (32, 4)),
        action=jr.uniform(getkey(), (32, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (32, 2)),
    )
    frozen = dataclasses.replace(SMALL_AGENT, critic_lr=1e-12, alpha_lr=1e-12)
    step = eqx.filter_jit(lambda s, k: update(frozen, s, batch, k))

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
    batch = Batch(
        obs=jr.normal(getkey(), (16, 4)),
        action=jr.uniform(getkey(), (16, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (16, 2)),
    )
    new, _ = eqx.filter_jit(lambda s, k: update(config, s, batch, k))(state, getkey())
    params = lambda actor: eqx.filter(actor, eqx.is_inexact_array)  # noqa: E731
    assert not tree_allclose(params(new.actor), params(state.actor))
    expected = jax.tree.map(
        lambda old, cur: decay * old + (1 - decay) * cur, params(state.actor), params(new.actor)
    )
    assert tree_allclose(params(new.eval_actor), expected, rtol=1e-6, atol=1e-7)
    if decay == 0.0:  # exactly the actor
        assert eqx.tree_equal(params(new.eval_actor), params(new.actor))


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 10_000), st.floats(0.0, 1.0))
def test_lr_scale_is_a_cosine_from_one_to_the_final_scale(decay_updates, final):
    config = dataclasses.replace(SMALL_AGENT, lr_decay_updates=decay_updates, lr_final_scale=final)
    steps = jnp.linspace(0, 2 * decay_updates, 41).astype(jnp.int32)
    scale = jax.vmap(lambda n: lr_scale(config, n))(steps)
    assert scale[0] == pytest.approx(1.0)
    assert jnp.all(jnp.diff(scale) <= 1e-6), "the rates never rise"
    halfway = lr_scale(config, decay_updates // 2)
    progress = (decay_updates // 2) / decay_updates
    expected = final + (1 - final) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
    assert halfway == pytest.approx(float(expected), abs=1e-5)
    # At the end of the decay and after it: the final scale.
    assert jnp.allclose(scale[20:], final, atol=1e-6)
    assert lr_scale(SMALL_AGENT, 12_345) == 1.0  # no decay: constant rates


def test_updates_stop_when_the_rates_have_decayed_to_zero(getkey):
    # One SGD step at the full rates, then zero: the networks stop moving, α does not.
    config = dataclasses.replace(SMALL_AGENT, lr_decay_updates=1)
    batch = Batch(
        obs=jr.normal(getkey(), (16, 4)),
        action=jr.uniform(getkey(), (16, 2), minval=-1, maxval=1),
        goal=jr.normal(getkey(), (16, 2)),
    )
    step = eqx.filter_jit(lambda s, k: update(config, s, batch, k))
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
        (dict(lr_decay_updates=-1), "lr_decay_updates"),
        (dict(lr_final_scale=1.5), "lr_final_scale"),
    ],
)
def test_bad_agent_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CRLConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(layout="no_such_maze"), "no_such_maze"),
        (dict(num_envs=0), "num_envs"),
        (dict(discount=1.0), "discount"),
        (dict(unroll_length=50, buffer_capacity=40), "unroll_length"),
        (dict(window=1), "window"),
    ],
)
def test_bad_train_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **kwargs)


def test_train_iteration_uses_relabelled_future_goals(getkey):
    # The run loop's compiled functions (shared with the other tests: one compilation).
    trainer = Trainer(TINY)
    state = _init(trainer, seed_keys(0, 1))
    for _ in range(trainer.warmup_iterations):
        state, metrics = _warmup(trainer, state)
    first = jax.tree.map(lambda x: x[0], state)
    batch = eqx.filter_jit(Trainer.sample_batch)(trainer, first.buffer, getkey())
    assert batch.obs.shape == (8, 4) and batch.goal.shape == (8, 2)
    # Goals are positions the agent actually visited (the xy of some stored observation),
    # which the networks see in cell units.
    cell = trainer.env.layout.cell_size
    visited = first.buffer.data["obs"][..., :2].reshape(-1, 2) / cell
    gap = jnp.min(jnp.linalg.norm(batch.goal[:, None] - visited[None], axis=-1), axis=1)
    assert jnp.all(gap < 1e-6)
    assert jnp.all(
        jnp.min(jnp.linalg.norm(batch.obs[:, None, :2] - visited[None], axis=-1), 1) < 1e-6
    )
    state, metrics = _train(trainer, state)
    assert state.agent.updates[0] == TINY.sgd_steps
    assert jnp.isfinite(metrics["train/critic_loss"])


def _run(tmp_path, total, config=TINY, **kwargs):
    run_config = RunConfig(
        total_env_steps=total, eval_every=2, out_dir=str(tmp_path), progress=False, **kwargs
    )
    return run(config, run_config)


def test_run_writes_metrics_checkpoints_and_plots(tmp_path):
    per_iter = TINY.num_envs * TINY.unroll_length
    result = _run(tmp_path, 8 * per_iter, plots=True)
    assert int(result.state.iteration[0]) == 8
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # Warm-up (ceil(window 20 / unroll 10) = 2 iterations) only collects: no evaluation.
    assert [r["iteration"] for r in rows] == [4, 6, 8]
    for r in rows:
        assert 0.0 <= r["eval/success"] <= 1.0
        assert 0.0 <= r["eval/time_at_goal"] <= TINY.episode_length
    assert (tmp_path / "metrics.csv").read_text().startswith("iteration,env_steps")
    for name in ("learning_curve.png", "value_heatmap.png", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert json.loads((tmp_path / "summary.json").read_text()) == rows[-1]


def test_resumed_run_continues_exactly(tmp_path):
    per_iter = TINY.num_envs * TINY.unroll_length
    # 10 iterations, 2 of warm-up, 3 SGD steps each: the rates decay over exactly the whole
    # run, so the schedule's step count must resume too.
    config = dataclasses.replace(TINY, agent=dataclasses.replace(SMALL_AGENT, lr_decay_updates=24))
    straight = _run(tmp_path / "a", 10 * per_iter, plots=False, config=config)
    _run(tmp_path / "b", 6 * per_iter, plots=False, config=config)
    resumed = _run(tmp_path / "b", 10 * per_iter, plots=False, config=config)
    assert tree_allclose(
        jax.tree.leaves(jax.tree.map(_raw, straight.state)),
        jax.tree.leaves(jax.tree.map(_raw, resumed.state)),
        rtol=0,
        atol=0,
    )
    assert straight.history == [
        {**r, "time": s["time"]} for r, s in zip(resumed.history, straight.history, strict=True)
    ]


def test_resume_refuses_another_config(tmp_path):
    per_iter = TINY.num_envs * TINY.unroll_length
    _run(tmp_path, 6 * per_iter, plots=False)
    other = dataclasses.replace(TINY, batch_size=4)
    with pytest.raises(ValueError, match="another config"):
        run(other, RunConfig(total_env_steps=8 * per_iter, out_dir=str(tmp_path), progress=False))


def test_run_refuses_rates_that_reach_zero_before_its_end(tmp_path):
    per_iter = TINY.num_envs * TINY.unroll_length
    config = dataclasses.replace(TINY, agent=dataclasses.replace(SMALL_AGENT, lr_decay_updates=9))
    with pytest.raises(ValueError, match="makes 12 SGD steps.*lr_decay_updates=9"):
        _run(tmp_path, 6 * per_iter, config=config)
    assert not (tmp_path / "metrics.jsonl").exists()
    # A floor above zero, or a decay as long as the run (see the resume test), is allowed.
    _check_lr_decay(dataclasses.replace(config.agent, lr_final_scale=0.1), 12)
    _check_lr_decay(config.agent, 9)


def test_seeds_run_vmapped_and_first_seed_matches_a_single_run(tmp_path):
    trainer = Trainer(TINY)
    single, pair = _init(trainer, seed_keys(0, 1)), _init(trainer, seed_keys(0, 2))
    # Seed 0 of a multi-seed run starts exactly as the single-seed run (same key, same init);
    # the trajectories then agree up to float32 differences between batched and single matmuls.
    assert tree_allclose(
        jax.tree.leaves(jax.tree.map(lambda x: _raw(x[0]), pair)),
        jax.tree.leaves(jax.tree.map(lambda x: _raw(x[0]), single)),
        rtol=0,
        atol=0,
    )
    per_iter = TINY.num_envs * TINY.unroll_length
    trained = _run(tmp_path / "two", 6 * per_iter, plots=False, num_seeds=2)
    first = jax.tree.map(lambda x: x[0], trained.state.agent.critic)
    second = jax.tree.map(lambda x: x[1], trained.state.agent.critic)
    assert not tree_allclose(first, second)
    assert len(trained.history[-1]["eval/success_per_seed"]) == 2


def _raw(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jr.key_data(x)
    return x


def _example():
    path = Path(__file__).parents[1] / "examples" / "train_crl.py"
    spec = importlib.util.spec_from_file_location("train_crl", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_crl"] = module  # tyro reads the dataclasses' source for their docs
    spec.loader.exec_module(module)
    return module


def test_example_command_line_trains_and_reports(tmp_path, monkeypatch, capsys):
    """The example's CLI, with flags making it the tiny configuration above (compiled once)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    flags = {
        "train.agent.actor-width": 16, "train.agent.critic-width": 16, "train.agent.repr-dim": 8,
        "train.agent.actor-lr": 1e-3, "train.agent.critic-lr": 1e-3, "train.agent.alpha-lr": 3e-4,
        "train.agent.eval-actor-decay": 0.0, "train.agent.lr-decay-updates": 0,
        "train.chain-goals": 0.0,
        "train.episode-length": 20, "train.num-envs": 4, "train.unroll-length": 10,
        "train.sgd-steps": 3, "train.batch-size": 8, "train.buffer-capacity": 40,
        "train.num-eval-envs": 4, "run.total-env-steps": 6 * 40, "run.eval-every": 2,
        "run.out-dir": tmp_path / "run",
    }  # fmt: skip
    argv = ["train_crl.py", "point", "--run.no-plots", "--run.no-progress"]
    argv += ["--train.start-goal=reference"]
    argv += [f"--{k}={v}" for k, v in flags.items()]
    monkeypatch.setattr(sys, "argv", argv)
    _example().main()
    out = capsys.readouterr().out
    assert "Final evaluation after 240 env steps: success" in out
    assert "mean of the last 2 evaluations: success" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"] == dataclasses.asdict(TINY)


@pytest.mark.slow
def test_point_preset_reaches_its_success_target(tmp_path):
    """The README's command: at least 80% evaluation success on the far goals of the U-maze."""
    args = _example().PRESETS["point"][1]
    result = run(args.train, dataclasses.replace(args.run, out_dir=str(tmp_path), progress=False))
    assert result.final["eval/success"] >= 0.8
