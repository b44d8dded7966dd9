import dataclasses
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import check_int
from . import _metrics as M
from ._files import (
    METRICS,
    PLOTS,
    SUMMARY,
    CheckpointError,
    atomic_write_text,
    checkpoint_dirs,
    load_checkpoint_state,
    read_checkpoint_meta,
    remove_stale_temporaries,
    run_lock,
    save_checkpoint,
    to_json,
    write_history,
)
from ._machine import STARTS, record_start
from ._trainer import Trainer, TrainState


class DivergenceError(RuntimeError):
    """Training produced non-finite (or exploding) losses or parameters."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The outer loop around a [`Trainer`][deepcrl.train.Trainer]: budget, seeds, logging."""

    total_env_steps: int = 1_000_000
    """Environment steps per seed (warm-up collection included)."""
    seed: int = 0
    """Base seed, in [0, 2**31); seed `s` of `num_seeds` uses `jax.random.fold_in(key(seed), s)`."""
    num_seeds: int = 1
    """Independent runs trained at once (vmapped in one process)."""
    eval_every: int = 10
    """Evaluate (and checkpoint) every this many training iterations."""
    out_dir: str = "runs/default"
    """Where metrics, checkpoints and plots go."""
    resume: bool = True
    """Continue from `out_dir`'s checkpoint when there is one (same configuration required;
    metrics without a checkpoint, e.g. copied results, are refused rather than overwritten);
    `False` starts afresh, deleting the directory's previous checkpoints and metrics."""
    progress: bool = True
    """Show a progress bar with rates, ETA and the latest success rate."""
    plots: bool = True
    """Write the learning curve, value heatmap and trajectory plots at the end."""
    max_loss: float = 1e8
    """A training loss above this (in magnitude) counts as divergence and stops the run."""

    def __post_init__(self):
        for name in ("total_env_steps", "num_seeds", "eval_every"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        if self.seed >= 2**31:  # keys take 32 bits: 2**32 would be seed 0 again, silently
            raise ValueError(f"seed must be below 2**31, got {self.seed!r}.")
        for name in ("resume", "progress", "plots"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise ValueError(f"out_dir must be a non-empty string, got {self.out_dir!r}.")
        ok = isinstance(self.max_loss, int | float) and not isinstance(self.max_loss, bool)
        if not (ok and self.max_loss > 0):
            raise ValueError(f"max_loss must be positive, got {self.max_loss!r}.")


@dataclasses.dataclass
class RunResult:
    """What [`run`][deepcrl.train.run] returns."""

    state: TrainState
    """The final state (leading axis: seeds)."""
    history: list[dict[str, Any]]
    """One row per evaluation: iteration, env_steps, wall time and metrics (seed means)."""
    final: dict[str, Any]
    """The last evaluation's row."""


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Keys of a run's seeds: seed `s` gets `fold_in(key(seed), s)`.

    The first seed of a multi-seed run has the single-seed run's key and initial state,
    but not its numbers after that: vmapped arithmetic rounds differently, and RL
    amplifies the differences.
    """
    return jax.vmap(lambda s: jr.fold_in(jr.key(seed), s))(jnp.arange(num_seeds))


# The trainer is an argument (not a closure constant), so programs stay small and one
# compilation serves every run with an equal configuration. Methods are looked up on the
# instance, so a subclass's overrides are the ones that run.
def _init_fn(trainer: Trainer, key: jax.Array) -> TrainState:
    return trainer.init(key)


def _advance_fn(trainer: Trainer, state: TrainState, iterations: Any, learn: Any) -> Any:
    return trainer.advance(state, iterations, learn)


RECORDED_EPISODES = 8
"""Evaluation episodes whose trajectories every evaluation keeps (for the plots)."""


def _evaluate_fn(trainer: Trainer, state: TrainState, key: jax.Array) -> Any:
    return trainer.evaluate(state, key, record=RECORDED_EPISODES)


def _all_finite(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves] or [jnp.bool_(True)]))


# What a divergence check names, part by part of the state: a blown-up simulation is told
# apart from a blown-up learner (whose losses soon follow it).
_PARTS = {
    "learner": "the learner's parameters or optimiser state",
    "env_state": "the environments' state",
    "buffer": "the replay buffer",
}


def _finite_parts(state: TrainState) -> dict[str, jax.Array]:
    return {part: _all_finite(getattr(state, part)) for part in _PARTS}


_init = eqx.filter_jit(eqx.filter_vmap(_init_fn, in_axes=(None, 0)))
_advance = eqx.filter_jit(
    eqx.filter_vmap(_advance_fn, in_axes=(None, 0, None, None)), donate="all-except-first"
)
_evaluate = eqx.filter_jit(eqx.filter_vmap(_evaluate_fn, in_axes=(None, 0, 0)))
_finite = eqx.filter_jit(_finite_parts)


def run(
    trainer: Trainer,
    run_config: RunConfig = RunConfig(),
    *,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train, evaluate, log, checkpoint and plot; resumable and safe to kill.

    Every `eval_every` iterations (one compiled loop, no host round trip in between):
    check for divergence, evaluate all seeds, write a checkpoint (atomically, keeping the
    previous one) and the metrics (`metrics.jsonl`, `metrics.csv`), and call
    `callback(row)`. An interrupted run (a kill or Ctrl-C included) resumes from its last
    checkpoint and continues exactly as if it had not stopped. Each start records the
    software and machine it runs on in `starts.jsonl`.

    **Arguments:**

    - `trainer`: the learner, environments and training settings.
    - `run_config`: budget, seeds and output settings.
    - `callback`: called with each evaluation row (e.g. to log elsewhere).

    **Returns:** a [`RunResult`][deepcrl.train.RunResult].

    **Raises:** `ValueError` before any work for a configuration that cannot run, a
    checkpoint made by another configuration, metrics without a checkpoint to resume them
    from, or `plots=True` without matplotlib; `CheckpointError` for damaged files (the
    message names the file and how to recover); `RunLockedError` when another run writes
    to the same directory; `DivergenceError` when losses, parameters, the environments'
    state or the replay buffer stop being finite (the last good checkpoint is kept).
    """
    trainer, total_iters = _for_run(trainer, run_config)
    if run_config.plots and importlib.util.find_spec("matplotlib") is None:
        # Found out before the training, not after it.
        raise ValueError(
            "plots=True needs matplotlib: pip install 'deepcrl[examples]', or set plots=False."
        )
    out = Path(run_config.out_dir)
    with run_lock(out):
        return _run_locked(trainer, run_config, out, total_iters, callback)


def _for_run(trainer: Trainer, rc: RunConfig) -> tuple[Trainer, int]:
    """The trainer whose learner knows the run's SGD steps, and the run's iterations."""
    c = trainer.config
    per_iter = c.env_steps_per_iteration
    total_iters = -(-rc.total_env_steps // per_iter)
    if total_iters * per_iter >= 2**31:  # the state counts each seed's env steps in int32
        raise ValueError(
            f"total_env_steps={rc.total_env_steps} ({total_iters * per_iter} in whole "
            f"iterations of {per_iter}) must stay below 2**31 per seed."
        )
    warmup = trainer.warmup_iterations
    if total_iters <= warmup:
        raise ValueError(
            f"total_env_steps={rc.total_env_steps} ends within the warm-up ({warmup} iterations "
            f"of {per_iter} env steps fill the replay before the first update); give more steps."
        )
    learner = trainer.learner.with_total_updates((total_iters - warmup) * c.sgd_steps)
    return dataclasses.replace(trainer, learner=learner), total_iters


def load_run(trainer: Trainer, run_config: RunConfig) -> tuple[TrainState, list[dict[str, Any]]]:
    """The last checkpoint of the run that `run(trainer, run_config)` writes: the state of
    every seed (leading axis: seeds) and the metrics history, e.g. to evaluate it again.

    **Raises:** `ValueError` when there is no checkpoint, or it was made by another
    configuration; `CheckpointError` for damaged files.
    """
    trainer, total_iters = _for_run(trainer, run_config)
    out = Path(run_config.out_dir)
    if not checkpoint_dirs(out):
        raise ValueError(f"No checkpoint in {out}: train first with the same configuration.")
    resume = dataclasses.replace(run_config, resume=True)
    return _start(trainer, resume, out, _identity(trainer, run_config), total_iters)


def evaluate_seeds(
    trainer: Trainer, state: TrainState, keys: jax.Array
) -> tuple[dict[str, jax.Array], Any]:
    """`trainer.evaluate` of every seed of a run's state (leading axis: seeds), seed `i` on
    `keys[i]` ([`eval_keys`][deepcrl.train.eval_keys] gives those of the run's own
    evaluations).

    **Returns:** the metrics per seed, and the recorded episodes (as `run` records them).
    """
    return _evaluate(trainer, state, keys)


def eval_keys(run_config: RunConfig, iteration: int) -> jax.Array:
    """The evaluation keys of every seed that `run` uses after `iteration` iterations. They
    depend on the iteration only, so a resumed run evaluates identically."""
    return jax.vmap(lambda k: jr.fold_in(k, iteration))(
        seed_keys(run_config.seed + 1_000_003, run_config.num_seeds)
    )


def _identity(trainer: Trainer, rc: RunConfig) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the configuration and the seeds."""
    return json.loads(
        to_json({"config": trainer.describe(), "seed": rc.seed, "num_seeds": rc.num_seeds})
    )


def run_identity(trainer: Trainer, rc: RunConfig) -> dict[str, Any]:
    """What `run(trainer, rc)` records as its identity in `config.json` and its checkpoints
    (the learner told the run's length first, as `run` does), e.g. to recognise a run."""
    return _identity(_for_run(trainer, rc)[0], rc)


def _run_locked(
    trainer: Trainer,
    rc: RunConfig,
    out: Path,
    total_iters: int,
    callback: Callable[[dict[str, Any]], None] | None,
) -> RunResult:
    c = trainer.config
    per_iter = c.env_steps_per_iteration
    warmup = trainer.warmup_iterations
    identity = _identity(trainer, rc)
    remove_stale_temporaries(out)  # under the lock: no other process is saving
    state, history = _start(trainer, rc, out, identity, total_iters)
    # The summary goes before any other file changes: a kill from here on leaves a run that
    # has not ended (a resumed one has not until it reaches its new budget).
    (out / SUMMARY).unlink(missing_ok=True)
    if not history:  # a fresh start: earlier files describe another run
        for path in checkpoint_dirs(out):
            shutil.rmtree(path, ignore_errors=True)
        for name in ("metrics.csv", STARTS, *PLOTS):  # a run without plots draws none
            (out / name).unlink(missing_ok=True)
    write_history(out, history)  # restores the metrics files from the checkpoint's history
    atomic_write_text(out / "config.json", to_json({**identity, "run": dataclasses.asdict(rc)}))
    # Kept on the host: an interrupt inside `_advance` leaves `state` donated (deleted).
    reached = int(state.iteration[0])
    record_start(out, reached, reached * per_iter)

    episodes = None
    bar = _progress(rc, total_iters * per_iter, reached * per_iter)
    start_time = time.perf_counter() - (history[-1][M.TIME] if history else 0.0)
    try:
        while (iteration := int(state.iteration[0])) < total_iters:
            learn = iteration >= warmup
            if learn:
                stop = min(total_iters, (iteration // rc.eval_every + 1) * rc.eval_every)
            else:
                stop = warmup
            chunk_start = time.perf_counter()
            state, metrics = _advance(
                trainer, state, jnp.asarray(stop - iteration, jnp.int32), jnp.asarray(learn)
            )
            metrics = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
            reached = stop
            rate = (stop - iteration) * per_iter / (time.perf_counter() - chunk_start)
            bar.update((stop - iteration) * per_iter)
            if not learn:
                continue
            _check_divergence(state, metrics, rc, out, iteration, stop)
            row, episodes = _evaluate_row(trainer, state, rc, metrics)
            row[M.ENV_STEPS_PER_S] = rate
            row[M.TIME] = time.perf_counter() - start_time
            history.append(row)
            meta = {**identity, "iteration": stop, "history": history}
            save_checkpoint(out, state, meta)
            write_history(out, history)
            bar.set_postfix(
                success=f"{row[M.EVAL_SUCCESS]:.2f}",
                loss=f"{row.get(M.CRITIC_LOSS, float('nan')):.3g}",
            )
            if callback is not None:
                callback(row)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"Interrupted at iteration {reached}; rerun to resume from the last checkpoint "
            f"in {out}."
        )
        raise
    bar.close()
    final = history[-1] if history else {}
    if rc.plots and history:
        from ._plots import save_run_plots

        if episodes is None:  # resumed after its last evaluation: record those episodes again
            _, episodes = _evaluate(trainer, state, eval_keys(rc, int(state.iteration[0])))
        first = jax.tree.map(lambda x: x[0], (state, episodes))
        save_run_plots(trainer, first[0], history, out, None if episodes is None else first[1])
    atomic_write_text(out / SUMMARY, to_json(final))
    return RunResult(state=state, history=history, final=final)


def _start(
    trainer: Trainer, rc: RunConfig, out: Path, identity: dict[str, Any], total_iters: int
) -> tuple[TrainState, list[dict[str, Any]]]:
    """A fresh state, or the last checkpoint's state and history after checking that it was
    made by this configuration (before reading any array). Changes no file."""
    saved = checkpoint_dirs(out)
    metrics = out / METRICS
    if rc.resume and not saved and metrics.exists() and metrics.read_bytes().strip():
        # Metrics without a checkpoint are not a run killed early (its first checkpoint is
        # written before its first metrics), but copied results or removed checkpoints.
        raise ValueError(
            f"{out} holds a run's metrics but no checkpoint to resume it from; use another "
            "out_dir, or resume=False to start afresh and delete them."
        )
    if not (saved and rc.resume):
        return _init(trainer, seed_keys(rc.seed, rc.num_seeds)), []
    newest = saved[-1]
    for _ in range(3):
        try:
            return _load(trainer, rc, out, newest, identity, total_iters)
        except CheckpointError:
            # A run still training beside a reader (`load_run`) removes its older
            # checkpoints as it writes new ones: gone while read is not damaged.
            if newest.exists() or not (saved := checkpoint_dirs(out)):
                raise
            newest = saved[-1]
    return _load(trainer, rc, out, newest, identity, total_iters)


def _load(
    trainer: Trainer,
    rc: RunConfig,
    out: Path,
    path: Path,
    identity: dict[str, Any],
    total_iters: int,
) -> tuple[TrainState, list[dict[str, Any]]]:
    meta = read_checkpoint_meta(out, path)
    for name, value in identity.items():
        if meta.get(name) != value:
            raise ValueError(
                f"The checkpoint in {out} was made with another {name}: "
                f"{_difference(meta.get(name), value)}; use another out_dir, or "
                "resume=False to start afresh."
            )
    if meta["iteration"] > total_iters:
        raise ValueError(
            f"The run in {out} already made {meta['iteration']} iterations, more than "
            f"total_env_steps={rc.total_env_steps} allows ({total_iters}); give at least "
            f"{meta['iteration'] * trainer.config.env_steps_per_iteration} env steps."
        )
    shapes = eqx.filter_eval_shape(_init, trainer, seed_keys(rc.seed, rc.num_seeds))
    return load_checkpoint_state(out, path, shapes), list(meta["history"])


def _difference(saved: Any, now: Any, where: str = "") -> str:
    """The first path at which two JSON values differ, e.g. `learner.critic_depth: 4 != 16`."""
    if isinstance(saved, dict) and isinstance(now, dict):
        # The learner's class first: when it differs, every other difference follows from it.
        for key in sorted(set(saved) | set(now), key=lambda k: (k != "learner", k)):
            if saved.get(key) != now.get(key):
                return _difference(saved.get(key), now.get(key), f"{where}.{key}" if where else key)
    return f"{where or 'value'}: {saved!r} (checkpoint) != {now!r} (now)"


def _check_divergence(
    state: TrainState,
    metrics: dict[str, np.ndarray],
    rc: RunConfig,
    out: Path,
    start: int,
    stop: int,
) -> None:
    bad = sorted(
        name
        for name, value in metrics.items()
        if not np.all(np.isfinite(value))
        or (name.endswith("loss") and np.any(np.abs(value) > rc.max_loss))
    )
    bad += [_PARTS[part] for part, finite in _finite(state).items() if not bool(finite)]
    if bad:
        saved = checkpoint_dirs(out)
        kept = f"the last good checkpoint ({saved[-1]}) is kept" if saved else "no checkpoint yet"
        raise DivergenceError(
            f"Training diverged in iterations {start}–{stop}: non-finite or exploding "
            f"(> max_loss={rc.max_loss:g}) {', '.join(bad)}; {kept}. Lower the learning "
            "rates, or check the inputs."
        )


def _evaluate_row(
    trainer: Trainer, state: TrainState, rc: RunConfig, train_metrics: dict[str, np.ndarray]
) -> tuple[dict[str, Any], Any]:
    iteration = int(state.iteration[0])
    metrics, episodes = _evaluate(trainer, state, eval_keys(rc, iteration))
    learning = max(iteration - trainer.warmup_iterations, 0)
    row: dict[str, Any] = {
        M.ITERATION: iteration,
        M.ENV_STEPS: int(state.env_steps[0]),
        M.SGD_STEPS: learning * trainer.config.sgd_steps,
    }
    for name, value in (train_metrics | metrics).items():
        per_seed = np.asarray(value, dtype=np.float64)
        row[name] = float(per_seed.mean())
        if name.startswith("eval/") and per_seed.size > 1:
            row[name + M.PER_SEED] = per_seed.tolist()
    return row, episodes


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress(run_config: RunConfig, total: int, initial: int) -> Any:
    if not run_config.progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress bar is optional (extra `examples`)
        return _NoBar()
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        unit_scale=True,
        desc="env steps",
        dynamic_ncols=True,
        smoothing=0.1,
    )
