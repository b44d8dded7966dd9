"""The generic trainer and its run loop (batches, resume, files, locks and divergence), and the
example scripts end to end on the same tiny configuration.

Every run here uses one tiny configuration, so the whole file compiles its programs once."""

import dataclasses
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jaxtyping import TypeCheckError

import deepcrl.train._files
import deepcrl.train._plots
import deepcrl.train._run as run_module
from deepcrl.crl import CRL, CRLConfig
from deepcrl.envs import LAYOUTS, MazeConfig, get_layout
from deepcrl.replay import future_indices
from deepcrl.td import TD, TDConfig
from deepcrl.train import (
    CheckpointError,
    DivergenceError,
    RunConfig,
    RunLockedError,
    Tandem,
    TrainConfig,
    Trainer,
    eval_keys,
    evaluate_seeds,
    load_history,
    load_run,
    metrics as M,
    run,
    run_ended,
    seed_keys,
)
from deepcrl.train._files import (
    atomic_write_text,
    checkpoint_dirs,
    load_checkpoint_state,
    read_json,
    remove_stale_temporaries,
    run_lock,
    save_checkpoint,
    update_json,
    write_history,
)
from deepcrl.train._machine import STARTS, record_start
from deepcrl.train._plots import farthest_goal, learning_curve, value_grid
from deepcrl.train._run import _advance, _check_divergence, _init

from .helpers import TINY_FLAGS, tree_allclose

# The rates decay over exactly the 10-iteration runs below (8 learning iterations × 3 SGD
# steps), so that resuming must continue the schedule's step count too.
LEARNER = CRLConfig(
    actor_width=16,
    critic_width=16,
    repr_dim=8,
    actor_lr=1e-3,
    critic_lr=1e-3,
    lr_schedule="cosine",
    lr_decay_updates=24,
    eval_actor_decay=0.5,
)
MAZE = MazeConfig(episode_length=20)
TRAIN = TrainConfig(
    num_envs=4, unroll_length=10, sgd_steps=3, batch_size=8, buffer_capacity=40, num_eval_envs=4
)
PER_ITER = TRAIN.num_envs * TRAIN.unroll_length


def _trainer(learner=LEARNER, train=TRAIN, maze=MAZE) -> Trainer:
    make = CRL if isinstance(learner, CRLConfig) else TD
    return Trainer(make(learner), maze.make(), maze.make_eval(), train)


def _config(out, iterations, **kwargs) -> RunConfig:
    # Two seeds everywhere: one set of compiled programs serves every run in this file.
    kwargs = {"eval_every": 2, "progress": False, "plots": False, "num_seeds": 2} | kwargs
    return RunConfig(total_env_steps=iterations * PER_ITER, out_dir=str(out), **kwargs)


def _run(out, iterations, trainer=None, **kwargs):
    return run(trainer or _trainer(), _config(out, iterations, **kwargs))


def _raw(x):
    return jr.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x


def _same(a, b) -> bool:
    leaves = lambda t: jax.tree.leaves(jax.tree.map(_raw, t))  # noqa: E731
    return tree_allclose(leaves(a), leaves(b), rtol=0, atol=0)


# ------------------------------------------------------------------------ batches


def test_batches_pair_steps_with_their_next_step_and_future_goals(getkey):
    trainer = _trainer()
    state = _init(trainer, seed_keys(0, 2))
    # Arguments typed as `run` types them (a weakly typed int would compile another program).
    warmup = jnp.asarray(trainer.warmup_iterations, jnp.int32)
    state, _ = _advance(trainer, state, warmup, jnp.asarray(False))
    first = jax.tree.map(lambda x: x[0], state)
    # Random goals are for learners that learn from the reward (TD); batches do not depend
    # on the learner.
    train = dataclasses.replace(TRAIN, random_goals=0.5, batch_size=64)
    trainer = _trainer(TDConfig(actor_width=16, critic_width=16), train=train)
    batch = eqx.filter_jit(lambda t, b, k: t.sample_batch(b, k))(trainer, first.buffer, getkey())
    cell = trainer.env.layout.cell_size
    stored = first.buffer.data.obs.reshape(-1, first.buffer.data.obs.shape[-1]) / cell

    def nearest(points):
        return jnp.min(jnp.linalg.norm(points[:, None, :2] - stored[None, :, :2], axis=-1), 1)

    # Observations, next observations and goals are stored positions, in cell units.
    assert jnp.all(nearest(batch.obs) < 1e-6) and jnp.all(nearest(batch.next_obs) < 1e-6)
    assert jnp.all(nearest(batch.goal) < 1e-6)
    # The next step is one env step away (at most max_step per axis), never a reset jump.
    step = jnp.abs(batch.next_obs[:, :2] - batch.obs[:, :2]) * cell
    assert jnp.all(step <= trainer.env.body.max_step + 1e-4)
    # The reward says whether the next step reaches the goal, on raw distances.
    dist = jnp.linalg.norm(batch.next_obs[:, :2] - batch.goal, axis=-1) * cell
    np.testing.assert_array_equal(
        batch.reward, np.asarray(dist < trainer.env.goal_threshold, np.float32)
    )


def test_load_run_gives_the_last_checkpoint_to_evaluate_again(tmp_path):
    with pytest.raises(ValueError, match="No checkpoint"):
        load_run(_trainer(), _config(tmp_path, 6))
    result = _run(tmp_path, 6)
    state, history = load_run(_trainer(), _config(tmp_path, 6))
    assert _same(state, result.state)
    assert history == load_history(tmp_path)
    # With the keys of the run's last evaluation, the run's last row per seed.
    metrics, _ = evaluate_seeds(_trainer(), state, eval_keys(_config(tmp_path, 6), 6))
    for name in (M.EVAL_SUCCESS, M.EVAL_TIME_AT_GOAL, M.EVAL_FINAL_DIST):
        np.testing.assert_allclose(metrics[name], history[-1][name + M.PER_SEED], rtol=1e-6)
    # Episode by episode, what those evaluations average, with each episode's start and goal.
    episodes = eqx.filter_jit(eqx.filter_vmap(Trainer.evaluate_episodes, in_axes=(None, 0, 0)))(
        _trainer(), state, eval_keys(_config(tmp_path, 6), 6)
    )
    assert episodes.success.shape == (2, TRAIN.num_eval_envs) and episodes.goal.shape[-1] == 2
    np.testing.assert_allclose(episodes.success.mean(1), metrics[M.EVAL_SUCCESS], rtol=1e-6)
    np.testing.assert_allclose(
        episodes.time_at_goal.mean(1), metrics[M.EVAL_TIME_AT_GOAL], rtol=1e-6
    )
    cell = np.asarray(_trainer().eval_env.layout.world_to_cell(episodes.start))
    assert (cell == [1, 1]).all()  # the evaluation maze's start cell
    # The last step starts from `last` and moves at most one step (each axis ±max_step).
    to_goal = np.linalg.norm(np.asarray(episodes.last - episodes.goal), axis=-1)
    step = _trainer().eval_env.body.max_step  # pyright: ignore[reportAttributeAccessIssue]
    assert np.abs(to_goal - np.asarray(episodes.final_dist)).max() <= np.sqrt(2) * step + 1e-5
    assert not np.asarray(_trainer().eval_env.layout.in_wall(episodes.last)).any()
    assert (np.linalg.norm(np.asarray(episodes.last - episodes.start), axis=-1) > 1).any()
    with pytest.raises(ValueError, match="another config"):
        load_run(_trainer(dataclasses.replace(LEARNER, critic_width=32)), _config(tmp_path, 6))


def test_the_value_map_is_the_critics_value_of_the_deterministic_action_at_each_point(
    tmp_path,
):
    trainer = _trainer()
    seed0 = jax.tree.map(lambda x: x[0], _run(tmp_path, 6).state)
    layout = trainer.eval_env.layout
    goal_xy = np.asarray(layout.cell_to_world(np.asarray(farthest_goal(layout))))
    values, extent = value_grid(trainer, seed0, goal_xy, resolution=9)
    x_min, x_max, y_min, y_max = layout.extent
    xs, ys = np.linspace(x_min, x_max, 9), np.linspace(y_min, y_max, 9)
    # Drawn with `imshow(extent=...)` (pixel edges; rows top to bottom), each pixel's centre
    # is its point.
    left, right, bottom, top = extent
    np.testing.assert_allclose(left + (np.arange(9) + 0.5) * (right - left) / 9, ys, atol=1e-6)
    np.testing.assert_allclose(top + (np.arange(9) + 0.5) * (bottom - top) / 9, xs, atol=1e-6)
    points = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).astype(np.float32)
    # Blank exactly inside the walls.
    np.testing.assert_array_equal(np.isnan(values), np.asarray(layout.in_wall(points)))
    # Entry [i, j] is the point (xs[i], ys[j]): the networks see positions in cell units.
    free = np.argwhere(~np.isnan(values))
    assert len(free) > 10
    obs = trainer.eval_env.observation_at(jnp.asarray(points[tuple(free.T)]))
    obs = obs.at[:, jnp.asarray(trainer.eval_env.goal_indices)].divide(layout.cell_size)
    goal = jnp.broadcast_to(jnp.asarray(goal_xy / layout.cell_size, jnp.float32), (len(free), 2))
    action = trainer.learner.act_eval(seed0.learner, obs, goal)
    expected = trainer.learner.value(seed0.learner, obs, action, goal)
    np.testing.assert_allclose(values[tuple(free.T)], expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(expected) > 0  # a map, not a constant


def test_load_run_beside_a_training_run_reads_its_newest_checkpoint(tmp_path, monkeypatch):
    result = _run(tmp_path, 6)
    read_meta = run_module.read_checkpoint_meta

    def rotated_while_read(out, path):
        # The run saves checkpoint 8 and removes its oldest, the one being read.
        if path.name == "000000006":
            shutil.copytree(path, path.with_name("000000008"))
            shutil.rmtree(path)
        return read_meta(out, path)

    monkeypatch.setattr(run_module, "read_checkpoint_meta", rotated_while_read)
    state, _ = load_run(_trainer(), _config(tmp_path, 8))
    assert _same(state, result.state)
    # A checkpoint damaged in place is reported, not skipped.
    (tmp_path / "checkpoints" / "000000008" / "state.eqx").write_bytes(b"")
    with pytest.raises(CheckpointError, match="000000008.*damaged"):
        load_run(_trainer(), _config(tmp_path, 8))


def test_load_run_reads_the_newest_checkpoint_when_a_state_goes_while_hashed(tmp_path, monkeypatch):
    # The run removes the checkpoint between the reader's check that its state exists and
    # the reading of it: gone, not damaged, so the newest is read instead.
    result = _run(tmp_path, 6)
    sha256 = deepcrl.train._files._sha256

    def rotated_while_hashed(path):
        if path.parent.name == "000000006":
            shutil.copytree(path.parent, path.parent.with_name("000000008"))
            shutil.rmtree(path.parent)
        return sha256(path)

    monkeypatch.setattr(deepcrl.train._files, "_sha256", rotated_while_hashed)
    state, _ = load_run(_trainer(), _config(tmp_path, 8))
    assert _same(state, result.state)


def test_the_csv_has_every_rows_metrics_not_only_the_first_rows(tmp_path):
    # A run resumed from an older version: its first rows lack a metric that later rows have.
    write_history(tmp_path, [{"iteration": 10, "a": 0.5}, {"iteration": 20, "a": 0.7, "b": 0.9}])
    assert (tmp_path / "metrics.csv").read_text() == "iteration,a,b\n10,0.5,\n20,0.7,0.9\n"


def test_random_goals_are_refused_for_a_contrastive_learner():
    # CRL trains each row's goal as its positive: a swapped goal would be a false one.
    config = dataclasses.replace(TRAIN, random_goals=0.3)
    with pytest.raises(ValueError, match="random_goals=0.3 needs a learner.*CRL"):
        Trainer(CRL(LEARNER), MAZE.make(), MAZE.make_eval(), config)
    with pytest.raises(ValueError, match="random_goals=0.3 needs a learner.*Tandem"):
        Trainer(
            Tandem(collector=TD(TDConfig(actor_width=16, critic_width=16)), learner=CRL(LEARNER)),
            MAZE.make(),
            None,
            config,
        )
    Trainer(
        TD(TDConfig(actor_width=16, critic_width=16)), MAZE.make(), MAZE.make_eval(), config
    )  # TD learns from the reward
    # With one row a contrastive batch has no negatives: its loss and gradient are zero.
    with pytest.raises(ValueError, match="batch_size=1: CRL takes each row's negatives"):
        Trainer(CRL(LEARNER), MAZE.make(), None, dataclasses.replace(TRAIN, batch_size=1))


def test_every_window_of_three_steps_has_a_step_with_a_future():
    # Episodes of at least 2 steps: every way three steps in a row can fall into episodes.
    # Two steps can straddle an episode's end and leave nothing to relabel: a batch whose
    # every window did stopped the run, so windows are at least 3 steps long.
    for traj_id in ([0, 0, 0], [0, 0, 1], [0, 1, 1]):
        _, valid = future_indices(jr.key(0), jnp.array(traj_id), 0.99)
        assert valid.any(), traj_id
    _, valid = future_indices(jr.key(0), jnp.array([0, 1]), 0.99)
    assert not valid.any()
    assert _trainer(maze=MazeConfig(episode_length=2)).sample_window == 3
    small = dataclasses.replace(TRAIN, buffer_capacity=2, unroll_length=2)
    with pytest.raises(ValueError, match=r"window must be in \[3, buffer_capacity=2\], got 2"):
        Trainer(CRL(LEARNER), MAZE.make(), None, small)
    with pytest.raises(ValueError, match="episode_length=1: a training episode needs at least 2"):
        Trainer(CRL(LEARNER), MazeConfig(episode_length=1).make(), None, TRAIN)


def test_env_and_eval_env_must_agree_on_sizes():
    with pytest.raises(ValueError, match="obs_size"):
        Trainer(CRL(LEARNER), MAZE.make(), MazeConfig(body="ant").make_eval(), TRAIN)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_envs=0), "num_envs"),
        (dict(discount=1.0), "discount"),
        (dict(discount=float("nan")), "discount"),
        (dict(random_goals=1.5), "random_goals"),
        (dict(random_goals=0.5, batch_size=1), "batch_size must be at least 2, got 1"),
        (dict(unroll_length=50, buffer_capacity=40), "unroll_length"),
        (dict(window=2), "window must be an integer >= 3, got 2"),
        (dict(window=0), "window"),  # 0 is not a way to ask for the default
        (dict(window=41), "window=41 must not exceed buffer_capacity=40"),
    ],
)
def test_bad_train_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TRAIN, **kwargs)


def test_a_budget_past_the_step_counter_is_refused_before_any_file(tmp_path):
    # Each seed's env steps are counted in int32: 2**31 would log as negative.
    with pytest.raises(ValueError, match=r"total_env_steps=2147483643 \(2147483680 in whole"):
        run(_trainer(), RunConfig(total_env_steps=2**31 - 5, out_dir=str(tmp_path)))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(total_env_steps=0), "total_env_steps must be an integer >= 1, got 0"),
        (dict(num_seeds=2.0), "num_seeds must be an integer >= 1, got 2.0"),
        (dict(eval_every=True), "eval_every must be an integer >= 1, got True"),
        (dict(seed=-1), "seed must be an integer >= 0, got -1"),
        (dict(seed=2**32), r"seed must be below 2\*\*31, got 4294967296"),  # else seed 0's keys
        (dict(seed="3"), "seed must be an integer >= 0, got '3'"),
        (dict(resume="no"), "resume must be True or False, got 'no'"),
        (dict(progress=0), "progress must be True or False, got 0"),
        (dict(plots=None), "plots must be True or False, got None"),
        (dict(out_dir=""), "out_dir must be a non-empty string, got ''"),
        (dict(max_loss=float("nan")), "max_loss must be positive, got nan"),
        (dict(max_loss=0), "max_loss must be positive, got 0"),
    ],
)
def test_bad_run_config_is_rejected(kwargs, match):
    # The checks as a caller meets them. Under this suite's type-checking hook, a value of
    # the wrong type is stopped even before them, by jaxtyping.
    with pytest.raises(ValueError, match=match):
        RunConfig.__post_init__(SimpleNamespace(**dataclasses.asdict(RunConfig()) | kwargs))  # pyright: ignore[reportArgumentType]
    with pytest.raises((ValueError, TypeCheckError)):
        RunConfig(**kwargs)
    RunConfig(seed=2**31 - 1, max_loss=float("inf"))  # the edges pass


# ------------------------------------------------------------------ runs and files


def test_run_writes_metrics_checkpoints_and_plots(tmp_path):
    result = _run(tmp_path, 8, plots=True)
    assert int(result.state.iteration[0]) == 8
    rows = load_history(tmp_path)
    # Warm-up (ceil(window 20 / unroll 10) = 2 iterations) only collects: no evaluation.
    assert [r[M.ITERATION] for r in rows] == [4, 6, 8]
    assert [r[M.SGD_STEPS] for r in rows] == [6, 12, 18]
    assert M.per_seed(rows[-1], M.EVAL_SUCCESS) == rows[-1][M.EVAL_SUCCESS + M.PER_SEED]
    assert M.per_seed({M.EVAL_SUCCESS: 0.5}, M.EVAL_SUCCESS) == [0.5]  # a row of one seed
    for r in rows:
        assert 0.0 <= r[M.EVAL_SUCCESS] <= 1.0
        assert 0.0 <= r[M.EVAL_TIME_AT_GOAL] <= MAZE.episode_length
        assert r[M.ENV_STEPS_PER_S] > 0 and np.isfinite(r[M.CRITIC_LOSS])
    assert (tmp_path / "metrics.csv").read_text().startswith("iteration,env_steps")
    for name in ("learning_curve.png", "value_heatmap.png", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    # A fresh start without plots in the same directory leaves none of the earlier run's.
    _run(tmp_path / "again", 6, plots=True)
    _run(tmp_path / "again", 4, resume=False)
    assert not list((tmp_path / "again").glob("*.png"))
    assert json.loads((tmp_path / "summary.json").read_text()) == rows[-1]
    # Two checkpoints are kept: the newest and the one before it.
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["000000006", "000000008"]
    # A learner that reports no critic loss gets a curve without that panel.
    without = [{k: v for k, v in r.items() if k != M.CRITIC_LOSS} for r in rows]
    learning_curve(without, tmp_path / "no_loss.png")
    width = lambda name: int.from_bytes((tmp_path / name).read_bytes()[16:20], "big")  # noqa: E731
    assert width("no_loss.png") == pytest.approx(2 / 3 * width("learning_curve.png"), rel=0.01)


def test_a_run_killed_after_its_last_checkpoint_plots_the_same_episodes(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        deepcrl.train._plots, "save_run_plots", lambda *args: drawn.append(jax.device_get(args[4]))
    )
    _run(tmp_path, 6, plots=True)
    (tmp_path / "summary.json").unlink()  # killed before the plots and the summary
    _run(tmp_path, 6, plots=True)
    assert len(drawn) == 2 and drawn[0] is not None
    assert tree_allclose(drawn[0], drawn[1], rtol=0, atol=0)


def test_resumed_run_continues_exactly(tmp_path, caplog):
    straight = _run(tmp_path / "a", 10)
    _run(tmp_path / "b", 6)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        resumed = _run(tmp_path / "b", 10)
    assert _same(straight.state, resumed.state)
    # The checkpoint's state is placed as a fresh one is: resuming compiles no second step.
    assert "_advance_fn" not in caplog.text

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in (M.TIME, M.ENV_STEPS_PER_S)} for r in rows]

    assert strip(straight.history) == strip(resumed.history)
    assert strip(load_history(tmp_path / "b")) == strip(straight.history)
    # Each start is recorded with the software and machine that trained from it.
    starts = lambda out: [json.loads(line) for line in (out / STARTS).read_text().splitlines()]  # noqa: E731
    assert [(r["iteration"], r["env_steps"]) for r in starts(tmp_path / "a")] == [(0, 0)]
    rows = starts(tmp_path / "b")
    assert [(r["iteration"], r["env_steps"]) for r in rows] == [(0, 0), (6, 6 * PER_ITER)]
    assert rows[1]["packages"]["jax"] == jax.__version__ and rows[1]["devices"]
    # A fresh start in the same directory describes another run: its starts begin anew.
    _run(tmp_path / "b", 4, resume=False)
    assert [r["iteration"] for r in starts(tmp_path / "b")] == [0]


def test_a_damaged_line_of_the_starts_is_dropped_with_a_warning(tmp_path):
    (tmp_path / STARTS).write_bytes(b'{"iteration": 0}\n{"iteration": 4, "to\xff\xfe\n[1]\n')
    with pytest.warns(UserWarning) as caught:
        record_start(tmp_path, 6, 6 * PER_ITER)
    assert [str(w.message).split(", ")[-1] for w in caught] == [
        "line 2: not a JSON object; dropped.",
        "line 3: not a JSON object; dropped.",
    ]
    rows = [json.loads(line) for line in (tmp_path / STARTS).read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 6] and rows[1]["cpu"]


def test_a_tandem_of_real_learners_trains_both_and_resumes_exactly(tmp_path):
    # A collector and a learner on one stream of data (experiment F): both learn, from
    # their own initialisations, the learner's metrics are logged as its own and the
    # collector's with a prefix, and a resumed run continues as the straight one did.
    tandem = Tandem(collector=CRL(LEARNER), learner=CRL(LEARNER))
    trainer = Trainer(tandem, MAZE.make(), MAZE.make_eval(), TRAIN)
    straight = _run(tmp_path / "a", 6, trainer)
    _run(tmp_path / "b", 4, trainer)
    resumed = _run(tmp_path / "b", 6, trainer)
    assert _same(straight.state, resumed.state)
    row = straight.history[-1]
    assert np.isfinite(row[M.CRITIC_LOSS]) and np.isfinite(row[M.train("collector_critic_loss")])
    assert row[M.CRITIC_LOSS] != row[M.train("collector_critic_loss")]
    first = jax.tree.map(lambda x: x[0], (_init(trainer, seed_keys(0, 2)), straight.state))
    for part in ("collector", "learner"):  # each network moved from its initialisation
        before, after = (eqx.filter(getattr(s.learner, part).critic, eqx.is_array) for s in first)
        assert not tree_allclose(before, after)


def test_a_run_has_ended_only_once_it_reaches_its_budget(tmp_path, monkeypatch):
    assert not run_ended(tmp_path)
    _run(tmp_path, 4)
    assert run_ended(tmp_path)

    def interrupt(row):
        raise KeyboardInterrupt

    # A larger budget resumes the run; killed before it, the run has not ended.
    with pytest.raises(KeyboardInterrupt):
        run(_trainer(), _config(tmp_path, 8), callback=interrupt)
    assert not run_ended(tmp_path)
    _run(tmp_path, 8)
    assert run_ended(tmp_path) and load_history(tmp_path)[-1][M.ITERATION] == 8

    # Killed while starting afresh over it, as its old files go, it has not ended.
    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "write_history", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, 8, resume=False)
    assert not run_ended(tmp_path) and not checkpoint_dirs(tmp_path)


def test_metrics_without_a_checkpoint_are_refused_not_overwritten(tmp_path):
    # Copied results (docs/results keeps no checkpoints) or removed checkpoints: resuming
    # would start afresh and delete the metrics, so it is refused and every file stays.
    _run(tmp_path, 4)
    shutil.rmtree(tmp_path / "checkpoints")
    files = lambda: {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}  # noqa: E731
    before = files()
    with pytest.raises(ValueError, match="metrics but no checkpoint.*resume=False"):
        _run(tmp_path, 4)
    assert files() == before and run_ended(tmp_path)
    assert [r[M.ITERATION] for r in _run(tmp_path, 4, resume=False).history] == [4]


def test_plots_without_matplotlib_are_refused_before_training(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a),
    )
    with pytest.raises(ValueError, match="plots=True needs matplotlib"):
        _run(tmp_path, 4, plots=True)
    assert not tmp_path.joinpath("checkpoints").exists()


def test_resume_refuses_another_configuration_before_reading_the_state(tmp_path):
    _run(tmp_path, 4)
    deeper = dataclasses.replace(LEARNER, critic_depth=8)
    with pytest.raises(ValueError, match=r"another config: learner.critic_depth: 4 .* != 8"):
        _run(tmp_path, 6, _trainer(deeper))
    with pytest.raises(ValueError, match="another num_seeds"):
        _run(tmp_path, 6, num_seeds=3)
    with pytest.raises(ValueError, match="another config: .*layout"):
        _run(tmp_path, 6, _trainer(maze=dataclasses.replace(MAZE, layout="u4_maze")))
    with pytest.raises(ValueError, match="another config: learner.learner: 'CRL'"):
        _run(tmp_path, 6, _trainer(TDConfig(actor_width=16, critic_width=16)))
    # A smaller budget than the run already made is refused, and config.json is untouched.
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(ValueError, match="already made 4 iterations"):
        _run(tmp_path, 3)
    assert (tmp_path / "config.json").read_text() == before


def test_damaged_files_name_themselves_and_the_way_out(tmp_path):
    _run(tmp_path, 6)
    newest, previous = checkpoint_dirs(tmp_path)[::-1]
    # A kill between writing a checkpoint's files leaves only a temporary directory.
    (tmp_path / "checkpoints" / ".000000008.123.tmp").mkdir()
    (newest / "state.eqx").write_bytes((newest / "state.eqx").read_bytes()[:100])
    with pytest.raises(
        CheckpointError, match=f"{newest / 'state.eqx'}.*delete {newest}.*{previous}"
    ):
        _run(tmp_path, 8)
    (newest / "meta.json").write_text('{"iteration": 6, "sha')
    with pytest.raises(CheckpointError, match=f"{newest / 'meta.json'}.*damaged"):
        _run(tmp_path, 8)
    # Following the advice resumes from the previous checkpoint.
    import shutil

    shutil.rmtree(newest)
    result = _run(tmp_path, 6)
    assert [r[M.ITERATION] for r in result.history] == [4, 6]
    assert not (tmp_path / "checkpoints" / ".000000008.123.tmp").exists()  # a killed save's
    # A torn metrics line is named; the checkpoint's history rewrites the file on resume.
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 8, "eval/suc')
    with pytest.raises(CheckpointError, match="metrics.jsonl line 3"):
        load_history(tmp_path)
    with open(tmp_path / "metrics.jsonl", "ab") as f:  # bytes that are not even UTF-8
        f.write(b'\n{"iteration": \xff\xfe}\n')
    with pytest.raises(CheckpointError, match="metrics.jsonl line 3"):
        load_history(tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_bytes().splitlines()
    (tmp_path / "metrics.jsonl").write_bytes(b"\n".join(lines[:2] + lines[-1:]))
    with pytest.raises(CheckpointError, match="metrics.jsonl line 3.*utf-8"):
        load_history(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")  # emptied: the checkpoint still has it all
    assert [r[M.ITERATION] for r in _run(tmp_path, 6).history] == [4, 6]
    assert len(load_history(tmp_path)) == 2


def test_saving_an_iteration_again_replaces_it_and_a_kill_midway_keeps_the_one_before(
    tmp_path, monkeypatch
):
    state = _init(_trainer(), seed_keys(0, 2))
    save_checkpoint(tmp_path, state, {"iteration": 2})
    save_checkpoint(tmp_path, state, {"iteration": 4, "tag": "first"})
    save_checkpoint(tmp_path, state, {"iteration": 4, "tag": "again"})
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["000000002", "000000004"]
    meta = json.loads((tmp_path / "checkpoints" / "000000004" / "meta.json").read_text())
    assert meta["tag"] == "again"
    assert not list((tmp_path / "checkpoints").glob(".*"))  # nothing left aside

    def killed_after_the_first_rename(src, dst):
        os_rename(src, dst)
        raise KeyboardInterrupt

    os_rename = os.rename
    monkeypatch.setattr("deepcrl.train._files.os.rename", killed_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, state, {"iteration": 4, "tag": "third"})
    monkeypatch.undo()
    # The old checkpoint 4 was moved aside, the new one not yet in place: the run resumes
    # from checkpoint 2, and its start removes what was left behind.
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["000000002"]
    shapes = eqx.filter_eval_shape(lambda: state)
    assert _same(load_checkpoint_state(tmp_path, checkpoint_dirs(tmp_path)[-1], shapes), state)
    remove_stale_temporaries(tmp_path)
    assert not list((tmp_path / "checkpoints").glob(".*"))
    for keep in (0, -1):
        with pytest.raises(ValueError, match="keep must be an integer >= 1"):
            save_checkpoint(tmp_path, state, {"iteration": 6}, keep=keep)


def test_a_failed_save_leaves_no_temporary_and_the_files_before_it(tmp_path, monkeypatch):
    state = _init(_trainer(), seed_keys(0, 2))
    save_checkpoint(tmp_path, state, {"iteration": 2})
    atomic_write_text(tmp_path / "summary.json", "{}")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("deepcrl.train._files.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path, state, {"iteration": 4})
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(tmp_path / "summary.json", '{"iteration": 4}')
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("checkpoints/.*"))
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["000000002"]
    assert (tmp_path / "summary.json").read_text() == "{}"
    # What a kill leaves (no handler runs) goes at the next start under the lock.
    (tmp_path / ".metrics.jsonl.123.tmp").write_text("torn")
    (tmp_path / "checkpoints" / ".000000004.123.tmp").mkdir()
    remove_stale_temporaries(tmp_path)
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("checkpoints/.*"))
    assert (tmp_path / "summary.json").exists() and checkpoint_dirs(tmp_path)


def test_a_checkpoint_of_another_structure_does_not_fit(tmp_path):
    # A valid checksum over another program's state: named, before any training.
    state = _init(_trainer(), seed_keys(0, 2))
    path = save_checkpoint(tmp_path, state, {"iteration": 2})
    wider = _trainer(dataclasses.replace(LEARNER, critic_width=32))
    shapes = eqx.filter_eval_shape(_init, wider, seed_keys(0, 2))
    with pytest.raises(CheckpointError, match=f"{path / 'state.eqx'} does not fit.*shape"):
        load_checkpoint_state(tmp_path, path, shapes)
    loaded = load_checkpoint_state(tmp_path, path, eqx.filter_eval_shape(lambda: state))
    assert _same(loaded, state) and loaded.key.dtype == state.key.dtype


def test_an_interrupt_inside_an_update_is_reported_as_an_interrupt(tmp_path, monkeypatch, capsys):
    # `_advance` donates the state it is given: the report must not read it afterwards.
    _run(tmp_path, 4)
    advance = run_module._advance

    def interrupted(trainer, state, *args):
        advance(trainer, state, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_advance", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, 6)
    assert (
        f"Interrupted at iteration 4; rerun to resume from the last checkpoint in {tmp_path}"
        in capsys.readouterr().out
    )


def test_a_second_run_in_the_same_directory_is_refused(tmp_path):
    with run_lock(tmp_path), pytest.raises(RunLockedError, match="Another run"):
        _run(tmp_path, 4)


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    _run(tmp_path, 4)
    with pytest.raises(DivergenceError, match=r"iterations 4–6.*train/critic_loss.*kept"):
        _run(tmp_path, 8, max_loss=1e-3)  # any loss "explodes" past this bound
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["000000004"]
    # Non-finite parameters are caught too (here after a learning rate of inf).
    trainer = _trainer()
    state = _init(trainer, seed_keys(0, 2))
    bad = eqx.tree_at(lambda s: s.learner.log_alpha, state, jnp.full((2,), jnp.nan))
    with pytest.raises(DivergenceError, match="parameters"):
        _check_divergence(bad, {}, RunConfig(), tmp_path, 0, 2)
    # So are a blown-up simulation and what it put in the replay buffer, each by name.
    nan_first = lambda x: x.at[0].set(jnp.nan)  # noqa: E731
    for part, name in (("env_state", "environments' state"), ("buffer", "replay buffer")):
        leaves = jax.tree.leaves(getattr(state, part))
        i = next(i for i, x in enumerate(leaves) if eqx.is_inexact_array(x))
        leaf = lambda s, part=part, i=i: jax.tree.leaves(getattr(s, part))[i]  # noqa: E731
        bad = eqx.tree_at(leaf, state, nan_first(leaf(state)))
        with pytest.raises(DivergenceError, match=f"{name}$|{name}[^,]*;") as caught:
            _check_divergence(bad, {}, RunConfig(), tmp_path, 0, 2)
        assert "parameters" not in str(caught.value)
    _check_divergence(state, {}, RunConfig(), tmp_path, 0, 2)  # a finite state passes
    json.loads((tmp_path / "config.json").read_text())  # outputs stay valid JSON


def test_seeds_run_vmapped_with_the_single_run_keys(tmp_path):
    trainer = _trainer()
    single, pair = _init(trainer, seed_keys(0, 1)), _init(trainer, seed_keys(0, 2))
    # Seed 0 of a multi-seed run starts exactly as the single-seed run (same key, same init).
    assert _same(jax.tree.map(lambda x: x[0], pair), jax.tree.map(lambda x: x[0], single))
    trained = _run(tmp_path, 6)
    first, second = (jax.tree.map(lambda x, s=s: x[s], trained.state.learner) for s in (0, 1))
    assert not tree_allclose(first, second)
    assert len(trained.history[-1][M.EVAL_SUCCESS + M.PER_SEED]) == 2


# ------------------------------------------------------------------ the examples
# The CRL command line and the seed study use the learner, maze and training settings of
# the runs above (`TINY_FLAGS`), so they reuse their compiled programs. The TD command line
# is tested with the TD learner (tests/test_td.py).


@pytest.mark.usefixtures("keep_cache_config")
def test_example_command_line_trains_and_reports(tmp_path, monkeypatch, capsys, examples):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    flags = TINY_FLAGS | {"learner.repr-dim": 8, "run.out-dir": tmp_path / "run"}
    flags |= {"run.num-seeds": 2}
    argv = ["train_crl.py", "point", "--run.no-plots", "--run.no-progress"]
    argv += [f"--{k}={v}" for k, v in flags.items()]
    monkeypatch.setattr(sys, "argv", argv)
    examples("train_crl").main()
    out = capsys.readouterr().out
    assert "Final evaluation after 240 env steps: success" in out
    assert "mean of the last 2 evaluations: success" in out
    assert "Over 2 seeds: final success" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["train"] == dataclasses.asdict(TRAIN)
    assert saved["config"]["learner"]["learner"] == "CRL"
    # Reruns skip compilation: the cache lives under $XDG_CACHE_HOME.
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache" / "deepcrl" / "jax")


def test_seed_study_judges_every_seed_under_every_rule(tmp_path, monkeypatch, capsys, examples):
    study = examples("point_seeds")
    preset = study.LEARNERS["crl"][0]["point"][1]
    tiny = dataclasses.replace(
        preset,
        # The runs' learner, equal to the preset with the command-line test's flags: one set of
        # compiled programs serves them all.
        learner=LEARNER,
        env=dataclasses.replace(preset.env, chain_goals=0.0, goal_noise=0.0, episode_length=20),
        train=TRAIN,
        run=RunConfig(total_env_steps=6 * 40, eval_every=2, progress=False, plots=False),
    )
    monkeypatch.setitem(study.LEARNERS, "crl", ({"point": ("tiny", tiny)}, CRL))
    argv = ["point_seeds.py", "--seeds", "2", "--eval-candidates", "1", "3"]
    monkeypatch.setattr(sys, "argv", [*argv, "--eval-keys", "2", "--out", str(tmp_path)])
    study.main()
    out = capsys.readouterr().out
    (row,) = json.loads((tmp_path / "results.json").read_text())
    assert (row["learner"], row["variant"], row["seeds"]) == ("crl", "preset", 2)
    assert set(row["eval"]) == {"1", "3"}
    assert len(row["online_actor"]["per_seed"]) == 2
    # Every seed's recorded episodes: all 4 evaluation episodes (up to 8 are recorded).
    assert [len(episodes) for episodes in row["episodes"]] == [4, 4]
    assert {len(e["goal_cell"]) for episodes in row["episodes"] for e in episodes} == {2}
    # With the deterministic rule on the run's own keys, the run's last evaluation again.
    assert row["eval"]["1"]["final"]["per_seed"] == row["logged"]["final"]["per_seed"]
    assert "crl-preset, best of 3, 2 evaluations:" in out
    assert (tmp_path / "results.md").read_text().count("| crl | preset |") == 2 + 2 * 2
    assert (tmp_path / "point_seeds.png").stat().st_size > 0
    # A rerun finds the finished run and only evaluates.
    study.main()
    assert json.loads((tmp_path / "crl-preset" / "summary.json").read_text())[M.ITERATION] == 6
    # The value maps of the same run: one rank correlation per seed and distance.
    maps = examples("value_maps")
    argv = ["value_maps.py", "--variants", "preset", "--seeds", "2", "--runs", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "maps")])
    maps.main()
    (row,) = json.loads((tmp_path / "maps" / "value_maps.json").read_text())
    for name in ("rho_geodesic", "rho_euclidean"):
        assert len(row[name]["per_seed"]) == 2
        assert all(-1 <= rho <= 1 for rho in row[name]["per_seed"])
    assert row["goal_cell"] == [3, 1] and row["points"] > 500
    assert (tmp_path / "maps" / "value_maps.png").stat().st_size > 10_000
    # Where the actor stops on its way into the farthest goal, per seed.
    argv = ["near_miss.py", "--run", str(tmp_path / "crl-preset"), "--seeds", "2"]
    monkeypatch.setitem(sys.modules, "point_seeds", study)  # the tiny preset
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "near")])
    examples("near_miss").main()
    near = json.loads((tmp_path / "near" / "near_miss.json").read_text())
    assert (near["goal_cell"], near["entry_from"]) == ([3, 1], [3, 2])
    for seed in near["seeds"]:
        assert -4.0 <= seed["best_value_offset"] <= 1.0
        assert seed["near_miss"] == (seed["rest_offset"] is None or abs(seed["rest_offset"]) > 0.5)
    # And the run next to itself cut short: a run that did not reach its budget says so.
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "config.json").write_text((tmp_path / "crl-preset" / "config.json").read_text())
    lines = (tmp_path / "crl-preset" / "metrics.jsonl").read_text().splitlines()
    (stopped / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    argv = ["compare_runs.py", str(tmp_path / "crl-preset"), str(stopped), "--labels", "a", "b"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "cmp")])
    examples("compare_runs").main()
    table = (tmp_path / "cmp" / "runs.md").read_text()
    assert "| a | 240 |" in table and "| b | 160 of 240 (stopped) |" in table
    (row_b,) = [line for line in table.splitlines() if line.startswith("| b |")]
    assert "difference from a" in table and (" to " in row_b or "n/a (one seed)" in row_b)
    assert (tmp_path / "cmp" / "runs.png").stat().st_size > 10_000
    # Rows are keyed by label: two runs under one label would silently be one.
    monkeypatch.setattr(sys, "argv", [*argv[:3], "--labels", "a", "a"])
    with pytest.raises(ValueError, match=r"Labels must be unique, got \['a'\]"):
        examples("compare_runs").main()
    monkeypatch.setattr(sys, "argv", [*argv, "--target", "95"])
    with pytest.raises(ValueError, match="--target is a share of episodes in \\(0, 1\\], got 95"):
        examples("compare_runs").main()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--eval-keys", "0"], "--eval-keys must be at least 1, got 0"),
        (
            ["--eval-candidates", "4", "0"],
            r"--eval-candidates must each be at least 1, got \[4, 0\]",
        ),
    ],
)
def test_point_seeds_refuses_bad_evaluation_options_before_training(
    examples, monkeypatch, capsys, args, match
):
    study = examples("point_seeds")
    monkeypatch.setattr(study, "trained", None)  # never reached
    monkeypatch.setattr(sys, "argv", ["point_seeds.py", *args])
    with pytest.raises(SystemExit):
        study.main()
    assert re.search(match, capsys.readouterr().err)


class _Bowl(eqx.Module):
    """A stand-in learner whose critic values actions by closeness to `best`, and whose
    actor always proposes `own`."""

    own: jax.Array
    best: jax.Array

    def act_eval(self, state, obs, goal):
        return jnp.broadcast_to(self.own, (obs.shape[0], 2))

    def value(self, state, obs, action, goal):
        return -jnp.sum((action - self.best[None]) ** 2, axis=-1)


def test_acting_greedily_on_the_critic_takes_its_best_candidate(examples):
    greedy = examples("critic_greedy")
    directions = greedy.unit_directions(4)  # +x, +y, −x, −y
    np.testing.assert_allclose(directions, [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-6)
    obs = goal = jnp.zeros((3, 2))
    up, near_up = jnp.array([0.0, 1.0]), jnp.array([0.1, 0.9])
    picked = greedy.CriticGreedy(_Bowl(own=-up, best=near_up), directions).act_eval(0, obs, goal)
    np.testing.assert_allclose(picked, np.tile([0.0, 1.0], (3, 1)), atol=1e-6)
    # The actor's own action is a candidate, and wins when the critic values it most.
    picked = greedy.CriticGreedy(_Bowl(own=near_up, best=near_up), directions).act_eval(
        0, obs, goal
    )
    np.testing.assert_allclose(picked, np.tile(near_up, (3, 1)))
    with pytest.raises(ValueError, match="--directions must be at least 1, got 0"):
        greedy.unit_directions(0)


def test_the_maze_step_points_to_the_cells_one_move_closer(examples):
    greedy = examples("critic_greedy")
    layout = LAYOUTS["u_maze"]
    farthest = farthest_goal(layout)
    start = np.asarray(layout.cell_to_world(np.array(layout.start_cell)))[None] + 0.3
    goal = np.asarray(layout.cell_to_world(np.array(farthest)))[None]
    (steps,) = greedy.maze_steps(layout, start, goal)
    to_goal = layout.distances(farthest)
    d = to_goal[tuple(layout.start_cell)]
    for vector in steps:
        cell = np.asarray(layout.world_to_cell(start[0] + vector)).tolist()
        assert to_goal[tuple(cell)] == d - 1
        assert np.allclose(start[0] + vector, layout.cell_to_world(np.array(cell)))
    # Inside the goal's cell, the step is the line to the goal.
    (inside,) = greedy.maze_steps(layout, goal + 0.2, goal)
    np.testing.assert_allclose(inside, [[-0.2, -0.2]], atol=1e-6)
    assert greedy.angle(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]))[0] == pytest.approx(90)


def test_sweep_trains_what_is_missing_and_keeps_what_is_finished(tmp_path, examples, capsys):
    sweep = examples("sweep")
    preset = examples("train_crl").PRESETS["point"][1]
    tiny = dataclasses.replace(
        preset,
        learner=LEARNER,  # the seed study's tiny preset: the same compiled programs
        env=dataclasses.replace(preset.env, chain_goals=0.0, goal_noise=0.0, episode_length=20),
        train=TRAIN,
        run=RunConfig(total_env_steps=6 * PER_ITER, eval_every=2, plots=False),
    )
    # The presets' rates decay over the whole run, which the learner learns from the run's
    # length: a finished run of them must still be recognised. Over a 10-iteration run, as
    # long as LEARNER's fixed decay (the same compiled programs).
    whole_run = {"lr_decay_updates": None, "total_env_steps": 10 * PER_ITER}
    settings = [
        sweep.setting(f"seed{seed}", {"seed": seed, "depth": 4}, tiny, CRL, {"seed": seed})
        for seed in (0, 10)
    ]
    settings[1] = sweep.setting("seed10", settings[1].labels, tiny, CRL, {"seed": 10, **whole_run})
    rows = sweep.sweep(settings, tmp_path, seeds=2, progress=False)
    assert [r["name"] for r in rows] == ["seed0", "seed10"]
    for row, iterations in zip(rows, (6, 10), strict=True):
        assert row["env_steps"] == iterations * PER_ITER
        assert len(row[M.EVAL_SUCCESS]["per_seed"]) == 2
        history = load_history(tmp_path / row["name"])
        assert row["curve"]["env_steps"] == [r[M.ENV_STEPS] for r in history]
        assert len(row["curve"][M.EVAL_SUCCESS]) == len(history)
        low, high = row[M.EVAL_SUCCESS]["ci95"]
        assert low <= row[M.EVAL_SUCCESS]["mean"] <= high
    # Different seeds trained different runs.
    losses = [[r[M.CRITIC_LOSS] for r in load_history(tmp_path / n)] for n in ("seed0", "seed10")]
    assert losses[0] != losses[1]
    # Success of the finished runs split by the goal's distance (the stitching analysis).
    stitching = examples("stitching")
    stitching.EPISODES_PER_SEED = 6  # two rounds of the 4 evaluation episodes
    stitched = [dataclasses.replace(s, labels={"actor_depth": 4}) for s in settings]
    split = stitching.by_distance(stitched, tmp_path, stitching.SCALES["cpu"], 2)
    # The U-maze's evaluation goals lie 4, 5 and 6 cell moves from its start.
    assert {r["goal_distance"] for r in split} <= {4, 5, 6}
    for name in ("seed0", "seed10"):
        assert sum(r["episodes"] for r in split if r["name"] == name) == 2 * 2 * 4
    assert all(0 <= x <= 1 for r in split for x in r["per_seed"])
    assert len((tmp_path / "by_distance.md").read_text().splitlines()) == 2 + len(split)
    assert (tmp_path / "stitching_by_distance.png").stat().st_size > 10_000
    # The value maps of the finished runs (the depth sweep's analysis, B): one rank
    # correlation per seed, the median seed's map with walls blank; a later call with one
    # run keeps the other's row.
    depth_sweep = examples("depth_sweep")
    sizes = [{"actor_depth": 8, "actor_width": 64}, {"actor_depth": 4, "actor_width": 64}]
    labelled = [dataclasses.replace(s, labels=x) for s, x in zip(settings, sizes, strict=True)]
    maps = depth_sweep.maps(labelled, tmp_path, depth_sweep.SCALES["cpu"], 2)
    assert [r["variant"] for r in maps] == ["seed10", "seed0"]  # by depth
    for r in maps:
        assert all(-1 <= rho <= 1 for rho in r["rho_geodesic"]["per_seed"])
        assert len(r["rho_euclidean"]["per_seed"]) == 2 and r["median_seed"] in (0, 1)
        grid = np.array(r["median_map"], dtype=float)
        # Blank exactly where the correlations leave out (the U-maze's walls).
        assert grid.shape == (64, 64) and (~np.isnan(grid)).sum() == r["points"] > 500
    assert maps[0]["rho_geodesic"] != maps[1]["rho_geodesic"]
    again = depth_sweep.maps(labelled[:1], tmp_path, depth_sweep.SCALES["cpu"], 2)
    assert [r["variant"] for r in again] == ["seed10", "seed0"] and again[0] == maps[0]
    assert (tmp_path / "value_maps.md").read_text().count("| seed") == 2
    assert (tmp_path / "value_maps.png").stat().st_size > 10_000
    # Replaying a run's last evaluation: its episodes, so the goals it logged success for.
    for s in settings:
        seeds = examples("missed_goals").missed_goals(s, tmp_path, 2)
        run_config = sweep.run_config_of(s, tmp_path, 2)
        keys = eval_keys(run_config, load_history(tmp_path / s.name)[-1][M.ITERATION])
        env = s.trainer.eval_env
        n = s.trainer.config.num_eval_envs
        for seed, key in zip(seeds, keys, strict=True):
            goals = jax.vmap(env.reset)(jr.split(key, n)).goal
            cells = Counter(f"{r},{c}" for r, c in env.layout.world_to_cell(goals).tolist())
            assert {c: n for c, (_, n, _) in seed["goals"].items()} == cells
            assert seed["success"] == seed["logged_success"]
            missed = sum(m for _, _, m in seed["goals"].values())
            assert missed == round((1 - seed["success"]) * n)
            ended = seed["missed_ended_in"]  # where each missed episode took its last step
            assert {c: sum(e.values()) for c, e in ended.items()} == {
                c: m for c, (_, _, m) in seed["goals"].items() if m
            }
            assert {d for d, _, _ in seed["goals"].values()} <= {4, 5, 6}
    # Where the missed episodes ended, the actor's action against the critic's best, and
    # the episodes of acting greedily on the critic.
    greedy = examples("critic_greedy")
    replayed = {s.name: greedy.critic_greedy(s, tmp_path, 2, 4) for s in settings}
    for s in settings:
        result = replayed[s.name]
        n = s.trainer.config.num_eval_envs
        for seed in result["per_seed"]:
            assert seed["success"]["actor"] == seed["logged_success"]
            assert 0 <= seed["success"]["greedy"] <= 1
            assert set(seed["by_goal"]["actor"]) == set(seed["by_goal"]["greedy"])
            assert len(seed["stops"]) == round((1 - seed["success"]["actor"]) * n)
            for stop in seed["stops"]:
                assert stop["value_gain"] >= 0  # the actor's action is a candidate
                assert all(0 <= a <= 180 for a in stop["to_line"] + stop["to_maze"])
        row = greedy.summary(result)
        assert row["stops"] == sum(len(x["stops"]) for x in result["per_seed"])
    assert greedy.table(replayed).count("| seed10 | 4 |") == 1
    greedy.plot(replayed, settings[0].trainer.eval_env.layout, tmp_path / "greedy.png")
    assert (tmp_path / "greedy.png").stat().st_size > 10_000
    # A finished setting is read, not trained again; a partial sweep keeps the other rows.
    summary = (tmp_path / "seed10" / "summary.json").stat().st_mtime_ns
    again = sweep.sweep(settings[1:], tmp_path, seeds=2, progress=False)
    assert again == rows[1:]
    assert (tmp_path / "seed10" / "summary.json").stat().st_mtime_ns == summary
    assert [r["name"] for r in sweep.read(tmp_path)] == ["seed0", "seed10"]
    assert "| seed0 |" not in (tmp_path / "results.md").read_text()  # names are not labels
    table = (tmp_path / "results.md").read_text()
    assert (
        table.startswith("| seed | depth | env steps |")
        and table.count("| 4 | 240 |") == table.count("| 4 | 400 |") == 1
    )
    (second,) = [line for line in table.splitlines() if "| 4 | 400 |" in line]
    assert "difference from seed0" in table and (" to " in second or "n/a" in second)
    # A sweep extended in a fresh folder from committed results (`--from`): what the folder
    # lacks is copied; a run copied without its checkpoints (as docs/results keeps them) is
    # read, not trained, and the analyses keep its rows beside those of the runs they load.
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir()
    for name in ("results.json", "value_maps.json", "by_distance.json"):
        shutil.copy(tmp_path / name, committed / name)
    for s in settings:
        shutil.copytree(tmp_path / s.name, committed / s.name,
                        ignore=shutil.ignore_patterns("checkpoints"))  # fmt: skip
    shutil.copytree(tmp_path / "seed0", fresh / "seed0")  # trained here, with checkpoints
    copied = ["by_distance.json", "results.json", "seed10", "value_maps.json"]
    assert sweep.seed_from(committed, fresh) == copied
    assert sweep.seed_from(committed, fresh) == []  # nothing overwritten
    assert [sweep.loadable(s, fresh) for s in settings] == [True, False]
    assert sweep.sweep(settings, fresh, seeds=2, progress=False) == rows
    assert not (fresh / "seed10" / "checkpoints").exists()  # not trained again
    assert stitching.by_distance(stitched, fresh, stitching.SCALES["cpu"], 2) == split
    extended = depth_sweep.maps(labelled, fresh, depth_sweep.SCALES["cpu"], 2)
    assert [r["rho_geodesic"] for r in extended] == [r["rho_geodesic"] for r in maps]
    with pytest.raises(ValueError, match="nowhere: not a directory"):
        sweep.seed_from(tmp_path / "nowhere", fresh)
    # A copy killed midway left only its temporary: the next copy replaces it whole.
    (tmp_path / "killed" / ".seed10.copying").mkdir(parents=True)
    (tmp_path / "killed" / ".seed10.copying" / "config.json").write_text("{")
    assert "seed10" in sweep.seed_from(committed, tmp_path / "killed")
    assert not (tmp_path / "killed" / ".seed10.copying").exists()
    assert load_history(tmp_path / "killed" / "seed10") == load_history(committed / "seed10")
    sweep.plot_against(rows, tmp_path / "fig.png", x="seed", xlabel="seed", log2=False)
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    # A finished directory of another configuration is refused, not reported as this one.
    other = sweep.setting("seed10", {"seed": 11, "depth": 4}, tiny, CRL, whole_run | {"seed": 11})
    with pytest.raises(ValueError, match="another seed"):
        sweep.sweep([other], tmp_path, seeds=2, progress=False)
    with pytest.raises(ValueError, match="another num_seeds"):
        sweep.sweep(settings[1:], tmp_path, seeds=3, progress=False)
    # A setting that diverges is a row (0% on every seed), and is not trained again.
    exploding = dataclasses.replace(settings[0], name="exploding")
    exploding = dataclasses.replace(
        exploding, run=dataclasses.replace(exploding.run, max_loss=1e-9)
    )
    (row,) = sweep.sweep([exploding], tmp_path, seeds=2, progress=False)
    assert row["diverged"] and row[M.EVAL_SUCCESS]["per_seed"] == [0.0, 0.0]
    assert "diverged after" in sweep.table([row])
    assert sweep.sweep([exploding], tmp_path, seeds=2, progress=False) == [row]
    # Given another divergence threshold it trains again, and its row is no longer diverged.
    calm = dataclasses.replace(exploding, run=dataclasses.replace(exploding.run, max_loss=1e8))
    (row,) = sweep.sweep([calm], tmp_path, seeds=2, progress=False)
    assert not row["diverged"] and not (tmp_path / "exploding" / "diverged.json").exists()
    assert sweep.sweep([calm], tmp_path, seeds=2, progress=False) == [row]
    # A setting another process is training is left to it: no row, no error.
    busy = dataclasses.replace(settings[0], name="busy")
    with run_lock(tmp_path / "busy"):
        assert sweep.sweep([busy], tmp_path, seeds=2, progress=False) == []
    assert "busy: another process is training it" in capsys.readouterr().out
    assert "busy" not in [r["name"] for r in sweep.read(tmp_path)]
    with pytest.raises(ValueError, match="'bogus'"):
        sweep.with_settings(tiny, {"bogus": 1})
    with pytest.raises(ValueError, match="unique"):
        sweep.sweep(settings[:1] * 2, tmp_path, seeds=2)
    # Every experiment's settings at every scale: the preset with what the grid says.
    for script in ("stitching", "depth_sweep", "batch_depth", "actor_critic_depth", "ablations"):
        for scale in examples(script).SCALES.values():
            for s in sweep.crl_settings(scale):
                args = sweep.with_settings(examples("train_crl").PRESETS[scale.preset][1], {})
                learner, maze = s.trainer.learner.config, s.trainer.env
                fields = {**vars(learner), **vars(s.trainer.config), "layout": maze.layout.name}
                fields |= {"start_goal": maze.start_goal, "chain_goals": maze.chain_goals}
                fields |= {"total_env_steps": s.run.total_env_steps}
                for name, value in {**scale.common, **scale.grid[s.name]}.items():
                    if name not in scale.tags:
                        assert fields.get(name, getattr(maze, name, None)) == value, (s.name, name)
                assert maze.body.name == args.env.body
                # The `<layout>_eval` variant where there is one (OGBench's mazes have none).
                evaluated = f"{maze.layout.name}_eval"
                evaluated = evaluated if evaluated in LAYOUTS else maze.layout.name
                assert s.trainer.eval_env.layout.name == evaluated
    for s in sweep.crl_settings(examples("stitching").SCALES["cpu"]):
        assert (s.trainer.env.start_goal, s.trainer.env.max_goal_distance) == ("stitch", 3)
    losses = examples("compare_value_losses")
    for kind in losses.LEARNERS:
        s = losses.setting(kind, 16, "u4_maze", 1000)
        config = s.trainer.learner.config
        assert (config.actor_depth, config.critic_depth, s.run.total_env_steps) == (16, 16, 1000)
        assert getattr(config, "value_loss", "crl") == kind.removeprefix("td-")
        assert s.name == f"u4_maze-{kind}-d16" and s.trainer.env.layout.name == "u4_maze"
    pairs = examples("collector_learner")
    for scale in pairs.SCALES.values():
        for s in pairs.settings(scale):
            tandem = s.trainer.learner
            for part, depth in (("collector", "collector_depth"), ("learner", "learner_depth")):
                config = getattr(tandem, part).config
                assert config.actor_depth == config.critic_depth == s.labels[depth]


_SWEEP_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import sweep
stat = {"mean": 1.0, "ci95": [1.0, 1.0], "per_seed": [1.0]}
for i in range(25):
    row = {"name": f"w{sys.argv[1]}-{i}", "env_steps": 1, "wall_s": 0.0, "diverged": False,
           "curve": {}, "eval/success": stat, "eval/time_at_goal": stat}
    sweep.write(Path(sys.argv[2]), [row])
"""


# Runs one experiment reuses from another (copied into its directory), as the docs report.
REUSED_RUNS = [
    (("ablations", "cpu", "d16-full"), ("depth_sweep", "cpu", "d16")),
    (("ablations", "cpu", "d64-full"), ("depth_sweep", "cpu", "d64")),
    (("ablations", "cpu-u4", "d16-full"), ("depth_sweep", "cpu-u4", "d16")),
    (("batch_depth", "cpu", "d4-b256"), ("depth_sweep", "cpu", "d4")),
    (("batch_depth", "cpu", "d8-b256"), ("depth_sweep", "cpu", "d8")),
    *(
        (("batch_depth", "cpu-medium", f"d{d}-b256"), ("depth_sweep", "cpu-medium", f"d{d}"))
        for d in (4, 8)
    ),
    *(
        (("batch_depth", scale, "d4-b256"), ("depth_sweep", scale, "d4"))
        for scale in ("cpu-large", "cpu-u4", "cpu-u5", "cpu-hardest", "cpu-hardest-long")
    ),
    (("batch_depth", "cpu-hardest", "d16-b256"), ("depth_sweep", "cpu-hardest", "d16")),
    *(
        (("actor_critic_depth", "cpu", f"a{d}-c{d}"), ("depth_sweep", "cpu", f"d{d}"))
        for d in (4, 8, 16)
    ),
    *(
        (("actor_critic_depth", "cpu-u5", f"a{d}-c{d}"), ("depth_sweep", "cpu-u5", f"d{d}"))
        for d in (4, 16)
    ),
]


@pytest.mark.parametrize(("reuser", "source"), REUSED_RUNS, ids=lambda x: "/".join(x))
def test_a_reused_run_is_the_same_configuration(examples, reuser, source):
    import sweep

    from deepcrl.train._run import run_identity

    def identity(script, scale, name):
        grid = examples(script).SCALES[scale]
        (s,) = sweep.select(sweep.crl_settings(grid), [name], grid)
        return run_identity(s.trainer, s.run), s.run.total_env_steps

    assert identity(*reuser) == identity(*source)


# The committed results of each sweep (docs/results/<folder>) and the command that made them.
COMMITTED_SWEEPS = {
    "depth_sweep": ("depth_sweep", "cpu"),
    "depth_sweep_u4": ("depth_sweep", "cpu-u4"),
    "depth_sweep_big": ("depth_sweep", "cpu-big"),
    "depth_sweep_big_long": ("depth_sweep", "cpu-big-long"),
    "depth_sweep_u5": ("depth_sweep", "cpu-u5"),
    "depth_sweep_u5_10seeds": ("depth_sweep", "cpu-u5", 10),
    "depth_sweep_medium": ("depth_sweep", "cpu-medium"),
    "depth_sweep_medium_long": ("depth_sweep", "cpu-medium-long"),
    "depth_sweep_medium_10seeds": ("depth_sweep", "cpu-medium", 10),  # `--seeds 10`
    "depth_sweep_medium_long_10seeds": ("depth_sweep", "cpu-medium-long", 10),
    "depth_sweep_large": ("depth_sweep", "cpu-large"),
    "depth_sweep_large_uniform": ("depth_sweep", "cpu-large-uniform"),
    "depth_sweep_hardest": ("depth_sweep", "cpu-hardest"),
    "depth_sweep_hardest_long": ("depth_sweep", "cpu-hardest-long"),
    "ablations": ("ablations", "cpu"),
    "ablations_u4": ("ablations", "cpu-u4"),
    "batch_depth": ("batch_depth", "cpu"),
    "batch_depth_medium": ("batch_depth", "cpu-medium"),
    "batch_depth_large": ("batch_depth", "cpu-large"),
    "batch_depth_u4": ("batch_depth", "cpu-u4"),
    "batch_depth_u5": ("batch_depth", "cpu-u5"),
    "batch_depth_u5_10seeds": ("batch_depth", "cpu-u5", 10),
    "batch_depth_hardest": ("batch_depth", "cpu-hardest"),
    "batch_depth_hardest_long": ("batch_depth", "cpu-hardest-long"),
    "actor_critic_depth": ("actor_critic_depth", "cpu"),
    "actor_critic_depth_u5": ("actor_critic_depth", "cpu-u5"),
    "stitching": ("stitching", "cpu"),
    "stitching_long": ("stitching", "cpu-long"),
}
# Run folders kept beside a sweep's that its command did not make (the docs name theirs).
NOT_SWEPT = {"depth_sweep_u4/d4-1536k", "depth_sweep_hardest_long/d4_rerun"}


@pytest.mark.parametrize("folder", COMMITTED_SWEEPS)
def test_committed_results_are_what_their_command_makes(examples, folder):
    # Each committed row is a setting of the script's grid, and each committed run folder is
    # the very configuration the script gives that setting: so `--from` extends it, and the
    # command the docs name next to a number makes that number's run.
    import sweep

    script, scale_name, *seeds = COMMITTED_SWEEPS[folder]
    scale = examples(script).SCALES[scale_name]
    committed = Path(__file__).parents[1] / "docs" / "results" / folder
    rows = json.loads((committed / "results.json").read_text())
    assert rows and all(r["name"] in scale.grid for r in rows)
    # In the grid's order: the table's differences are from its first row.
    names = [r["name"] for r in rows]
    assert names == sorted(names, key=list(scale.grid).index)
    settings = {s.name: s for s in sweep.crl_settings(scale)}
    runs = [p for p in committed.iterdir() if (p / "config.json").exists()]
    for path in runs:
        if f"{folder}/{path.name}" in NOT_SWEPT:
            continue
        s = settings[path.name]
        run_config = sweep.run_config_of(s, committed, seeds[0] if seeds else scale.seeds)
        assert sweep._finished(s, run_config) == "summary", path


def test_sweeps_sharing_an_out_directory_keep_each_others_rows(tmp_path):
    # Four processes each add 25 rows to one results.json; unserialised read-merge-writes
    # lose some (about a fifth, measured).
    examples = Path(__file__).parents[1] / "examples"
    writers = [
        subprocess.Popen([sys.executable, "-c", _SWEEP_WRITER, str(k), tmp_path, examples])
        for k in range(4)
    ]
    try:
        # A guard against a hang, not a speed target: each writer imports the package, which
        # takes minutes on a loaded 2-core machine.
        assert [w.wait(timeout=900) for w in writers] == [0] * 4
    finally:
        for w in writers:  # none left running into the next test
            w.kill()
            w.wait()
    rows = json.loads((tmp_path / "results.json").read_text())
    expected = sorted(f"w{k}-{i}" for k in range(4) for i in range(25))
    assert sorted(r["name"] for r in rows) == expected
    assert (tmp_path / "results.md").read_text().count("\n") == 2 + 100


def test_update_json_sets_a_damaged_file_aside_and_rewrites_what_derives_from_it(tmp_path):
    path = tmp_path / "results.json"

    def add(row):
        return lambda rows: [*rows, row]

    def count(rows):
        return f"{len(rows)} rows"

    assert update_json(path, add("a"), empty=[], derived={"results.md": count}) == ["a"]
    assert update_json(path, add("b"), empty=[], derived={"results.md": count}) == ["a", "b"]
    assert (tmp_path / "results.md").read_text() == "2 rows"
    for aside in ["results.json.damaged", "results.json.damaged-1"]:  # the first one stays
        path.write_text('[{"name": "a"}, {"na')  # torn by a writer that is not atomic
        with pytest.warns(UserWarning, match=r"does not parse as JSON.*" + aside):
            assert update_json(path, add("c"), empty=[]) == ["c"]
        assert (tmp_path / aside).read_text() == '[{"name": "a"}, {"na'
    assert update_json(path, add("d"), empty=[], derived={"results.md": count}) == ["c", "d"]
    assert (tmp_path / "results.md").read_text() == "2 rows"
    # Nothing else: the atomic writes' temporary files were all renamed into place.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".results.lock",
        "results.json",
        "results.json.damaged",
        "results.json.damaged-1",
        "results.md",
    ]


def test_a_sweep_reads_a_damaged_results_file_as_empty_and_keeps_it(tmp_path, examples):
    sweep = examples("sweep")
    assert sweep.read(tmp_path) == []  # no file yet
    (tmp_path / "results.json").write_text('[{"name": "d4", "cur')
    with pytest.warns(UserWarning, match="results.json.damaged"):
        assert sweep.read(tmp_path) == []
    assert (tmp_path / "results.json.damaged").read_text() == '[{"name": "d4", "cur'
    assert not (tmp_path / "results.json").exists()
    row = {"name": "d4", "curve": {}}
    update_json(tmp_path / "results.json", lambda rows: [*rows, row], empty=[])
    assert sweep.read(tmp_path) == read_json(tmp_path / "results.json", empty=None) == [row]


def _result_row(name: str, success: float = 0.5, **labels) -> dict:
    """A sweep's results row of two seeds, both at `success`."""
    stat = {"mean": success, "ci95": [success, success], "per_seed": [success] * 2}
    curve = {M.ENV_STEPS: [1000], M.EVAL_SUCCESS: [[success] * 2]}
    return {"name": name, **labels, "env_steps": 1000, "wall_s": 1.0, "diverged": False,
            "curve": curve, M.EVAL_SUCCESS: stat, M.EVAL_TIME_AT_GOAL: stat}  # fmt: skip


def test_a_kept_row_without_its_run_folder_is_not_trained_again(tmp_path, examples, monkeypatch):
    # Committed results keep some rows without their run folders; `--from` copies them.
    sweep, batch = examples("sweep"), examples("batch_depth")
    settings = sweep.select(sweep.crl_settings(batch.SCALES["cpu"]), ["d4-b64", "d8-b64"], None)
    kept = _result_row("d4-b64", actor_depth=4, batch_size=64)
    sweep.write(tmp_path, [kept])
    trained = []
    monkeypatch.setattr(sweep, "run", lambda trainer, rc: trained.append(Path(rc.out_dir).name))
    monkeypatch.setattr(sweep, "load_history", lambda directory: [])
    rows = sweep.sweep(settings, tmp_path, seeds=2, progress=False)
    assert trained == ["d8-b64"] and rows[0] == kept
    assert sweep.read(tmp_path)[0] == kept
    # A row of another seed count is no stand-in: that setting trains.
    trained.clear()
    sweep.sweep(settings[:1], tmp_path, seeds=5, progress=False)
    assert trained == ["d4-b64"]


def test_rows_written_before_a_label_existed_get_the_grids_label(tmp_path, examples):
    # The batch sweep's rows gained `sgd_steps`; rows kept from an earlier sweep lack it.
    # Read back with the grid's labels, old and new rows plot together (they used to make
    # the series (depth, None) beside (depth, 50), which do not sort).
    sweep, batch = examples("sweep"), examples("batch_depth")
    scale = batch.SCALES["cpu-medium"]
    old = _result_row("d4-b256", actor_depth=4, batch_size=256)
    new = _result_row("d8-b256-sgd200", actor_depth=8, batch_size=256, sgd_steps=200)
    elsewhere = _result_row("elsewhere", actor_depth=4, batch_size=64)
    sweep.write(tmp_path, [old, new, elsewhere])
    rows = sweep.grid_rows(tmp_path, scale)
    assert [(r["name"], r["sgd_steps"]) for r in rows] == [("d4-b256", 50), ("d8-b256-sgd200", 200)]
    batch.plot(rows, tmp_path, scale)
    assert (tmp_path / "batch_depth.png").stat().st_size > 10_000


def test_results_list_the_grid_in_its_order_not_the_order_runs_finished(tmp_path, examples):
    # The table's differences are from its first row: that must be the grid's first setting.
    sweep, batch = examples("sweep"), examples("batch_depth")
    scale = batch.SCALES["cpu-medium"]
    first, second = list(scale.grid)[:2]
    order = list(scale.grid)
    # "other" is not of the grid: kept, last.
    sweep.write(tmp_path, [_result_row("other", success=0.0)], order=order)
    sweep.write(tmp_path, [_result_row(second, success=1.0)], order=order)
    sweep.write(tmp_path, [_result_row(first, success=0.5)], order=order)
    assert [r["name"] for r in sweep.read(tmp_path)] == [first, second, "other"]
    assert [r["name"] for r in sweep.grid_rows(tmp_path, scale)] == [first, second]
    header, _, *lines = (tmp_path / "results.md").read_text().splitlines()
    assert f"difference from {first}," in header
    assert "| 50% 50% | — |" in lines[0] and "| 100% 100% | +50.0 " in lines[1]


def test_actor_critic_grid_puts_each_pair_in_its_cell(tmp_path, examples):
    grid = examples("actor_critic_depth")

    def row(actor, critic, per_seed):
        stat = {"mean": float(np.mean(per_seed)), "ci95": [0.0, 1.0], "per_seed": per_seed}
        return {"actor_depth": actor, "critic_depth": critic, M.EVAL_SUCCESS: stat}

    rows = [row(16, 4, [1.0, 0.5]), row(4, 8, [0.25, 0.25])]
    mean = grid.plot_grid(rows, tmp_path / "grid.png", grid.SCALES["cpu"], "grid")
    # Rows by actor depth, columns by critic depth (4, 8, 16); pairs not run are blank.
    assert mean[2, 0] == 0.75 and mean[0, 1] == 0.25
    assert np.isnan(mean).sum() == 7
    assert (tmp_path / "grid.png").stat().st_size > 10_000


def test_missed_goals_keep_other_settings_and_the_grids_order(examples):
    merged_in_order = examples("missed_goals").merged_in_order
    earlier = {"d16": "old d16", "extra": "kept", "d4": "old d4"}
    merged = merged_in_order(earlier, {"d8": "new d8", "d4": "new d4"}, ["d4", "d8", "d16"])
    assert merged == {"d4": "new d4", "d8": "new d8", "d16": "old d16", "extra": "kept"}
    assert list(merged) == ["d4", "d8", "d16", "extra"]


def test_success_by_goal_distance_counts_each_seeds_episodes_per_band(examples):
    mg = examples("missed_goals")
    # Per goal cell: [cell moves from the start, episodes, missed], as `missed_goals` keeps it.
    seeds = [
        {"goals": {"1,1": [1, 4, 0], "1,2": [5, 2, 1], "3,3": [9, 3, 3]}},
        {"goals": {"1,1": [1, 2, 1], "2,2": [3, 2, 2], "3,3": [9, 5, 0]}},
    ]
    bands = mg.distance_bands({"a": seeds})
    assert bands == [(1, 3), (4, 6), (7, 9)]
    # The second seed has no goal 4-6 moves away: left out of that band, not counted as 0.
    assert mg.success_by_distance(seeds, bands) == [[1.0, 0.25], [0.5], [0.0, 1.0]]
    table = mg.distance_table({"a": seeds, "b": seeds[:1]})
    assert "| goals 1–3 moves away | goals 4–6 moves away |" in table
    assert "| a | 62.5% (25.0%–100.0%; 100% 25%) | 50.0%" in table
    assert "| b | 100.0% (100.0%–100.0%; 100%) |" in table
    assert mg.distance_bands({"a": seeds}, bands=9) == [(d, d) for d in range(1, 10)]
    # A setting whose episodes drew no goal in a band shows a dash there.
    far_only = [{"goals": {"3,3": [9, 2, 1]}}]
    assert "| c | — | — | 50.0% (50.0%–50.0%; 50%) |" in mg.distance_table(
        {"a": seeds, "c": far_only}
    )
    with pytest.raises(ValueError, match="bands=0"):
        mg.distance_bands({"a": seeds}, bands=0)
    with pytest.raises(ValueError, match="no goals"):
        mg.distance_bands({"a": []})
    assert mg.distance_table({}) == "No finished run.\n"


def test_grid_geodesic_goes_around_walls(examples):
    geodesic = examples("value_maps").grid_geodesic
    free = np.ones((5, 5), bool)
    np.testing.assert_allclose(geodesic(free, (0.5, 0.5), (0, 0))[4, 4], 4 * 0.5 * np.sqrt(2))
    # Unequal spacings: each axis by its own, diagonals by both.
    d = geodesic(free, (1.0, 2.0), (0, 0))
    np.testing.assert_allclose([d[4, 0], d[0, 4], d[1, 1]], [4.0, 8.0, np.sqrt(5)])
    # A wall across the middle row with a gap at the right end: the way round. A diagonal
    # step may not cut the wall's corner, so the path steps straight through the gap:
    # (0,0) ↘ (1,1) → (1,4) ↓ (3,4) ↙ (4,3) ← (4,0).
    free[2, :4] = False
    d = geodesic(free, (1.0, 1.0), (0, 0))
    np.testing.assert_allclose(d[4, 0], 2 * np.sqrt(2) + 3 + 2 + 3)
    # Points walled off entirely are unreachable.
    free[2, 4] = False
    assert np.isinf(geodesic(free, (1.0, 1.0), (0, 0))[4]).all()


def test_grid_geodesic_on_a_non_square_maze_is_the_straight_distance_along_each_axis(examples):
    # The U5-maze spans 28 × 32 world units: its grid's spacings differ along x and y. Along
    # a straight free line of grid points the shortest path is that line, in world units.
    vm = examples("value_maps")
    points, free, spacing = vm.grid_over(get_layout("u5_maze"))
    assert abs(spacing[0] - spacing[1]) > 0.05
    source = next(  # a free point with free points after it along both axes
        (int(i), int(j))
        for i, j in np.argwhere(free)
        if free[i + 1 : i + 3, j].all() and free[i, j + 1 : j + 3].all()
    )
    d = vm.grid_geodesic(free, spacing, source)
    for axis in (0, 1):
        line = [source]
        while free[step := tuple(np.add(line[-1], np.eye(2, dtype=int)[axis]))]:
            line.append(step)
        assert len(line) >= 3
        straight = [abs(points[p][axis] - points[source][axis]) for p in line]
        np.testing.assert_allclose([d[p] for p in line], straight, rtol=1e-5)


def test_recheck_reproduces_committed_correlations_from_their_stored_maps(examples):
    # With the x spacing on both axes, as they were measured, the stored median-seed maps of
    # a non-square maze give their stored correlations again; with each axis's, a close one.
    committed = Path(__file__).parents[1] / "docs" / "results" / "depth_sweep_u4"
    table = examples("value_maps").recheck([committed / "value_maps.json"])
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert len(rows) == 4
    for row in rows:
        stored, one_spacing, each_axis = map(float, row[3:6])
        assert one_spacing == stored and abs(each_axis - stored) < 0.05


@pytest.mark.slow
def test_crl_point_preset_holds_on_nine_of_ten_seeds(tmp_path, examples):
    """The README's command over ten seeds (vmapped; about an hour on 2 cores): at least 9 of 10
    seeds are at ≥ 95% success in each of the last two evaluations (no late collapse)."""
    args = examples("train_crl").PRESETS["point"][1]
    trainer = Trainer(CRL(args.learner), args.env.make(), args.env.make_eval(), args.train)
    config = dataclasses.replace(args.run, out_dir=str(tmp_path), progress=False, num_seeds=10)
    history = run(trainer, config).history
    per_seed = np.array([r[M.EVAL_SUCCESS + M.PER_SEED] for r in history[-2:]])
    assert (per_seed >= 0.95).all(axis=0).sum() >= 9, per_seed


@pytest.mark.slow
def test_td_point_preset_reaches_its_success_target(tmp_path, examples):
    """`python examples/train_td.py point`: at least 80% evaluation success on the far goals."""
    args = examples("train_td").PRESETS["point"][1]
    trainer = Trainer(TD(args.learner), args.env.make(), args.env.make_eval(), args.train)
    config = dataclasses.replace(args.run, out_dir=str(tmp_path), progress=False)
    assert run(trainer, config).final[M.EVAL_SUCCESS] >= 0.8
