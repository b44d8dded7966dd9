import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ._agent import CRLConfig
from ._trainer import TrainConfig, Trainer, TrainState

CHECKPOINT = "checkpoint.eqx"
CHECKPOINT_META = "checkpoint.json"
METRICS = "metrics.jsonl"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The outer loop around a [`Trainer`][deepcrl.crl.Trainer]: budget, seeds, logging."""

    total_env_steps: int = 1_000_000
    """Environment steps per seed (warm-up collection included)."""
    seed: int = 0
    """Base seed; seed `s` of `num_seeds` uses `jax.random.fold_in(key(seed), s)`."""
    num_seeds: int = 1
    """Independent runs trained at once (vmapped in one process)."""
    eval_every: int = 10
    """Evaluate (and checkpoint) every this many training iterations."""
    out_dir: str = "runs/crl"
    """Where metrics, checkpoints and plots go."""
    resume: bool = True
    """Continue from `out_dir`'s checkpoint when there is one (same config required)."""
    progress: bool = True
    """Show a progress bar with rates, ETA and the latest success rate."""
    plots: bool = True
    """Write the learning curve, value heatmap and trajectory plots at the end."""

    def __post_init__(self):
        for name in ("total_env_steps", "num_seeds", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")


@dataclasses.dataclass
class RunResult:
    """What [`run`][deepcrl.crl.run] returns."""

    state: TrainState
    """The final state (leading axis: seeds)."""
    history: list[dict[str, Any]]
    """One row per evaluation: iteration, env_steps, wall time and metrics (seed means)."""
    final: dict[str, Any]
    """The last evaluation's row."""


def config_to_dict(train: TrainConfig, run: RunConfig | None = None) -> dict[str, Any]:
    """A JSON-able description of a run's configuration."""
    out: dict[str, Any] = {"train": dataclasses.asdict(train)}
    if run is not None:
        out["run"] = dataclasses.asdict(run)
    return out


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Inverse of `config_to_dict(...)["train"]`."""
    fields: dict[str, Any] = {**data, "agent": CRLConfig(**data["agent"])}
    return TrainConfig(**fields)


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_data(tree: Any) -> Any:
    """Typed PRNG keys as their raw uint32 data (what serialisation can store)."""
    return jax.tree.map(lambda x: jr.key_data(x) if _is_key(x) else x, tree)


def save_checkpoint(path: Path, state: TrainState, meta: dict[str, Any]) -> None:
    """Write the state and its metadata atomically (a crash never leaves a torn checkpoint)."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (CHECKPOINT + ".tmp")
    eqx.tree_serialise_leaves(tmp, _key_data(state))
    os.replace(tmp, path / CHECKPOINT)
    tmp_meta = path / (CHECKPOINT_META + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_meta, path / CHECKPOINT_META)


def load_checkpoint(path: Path, template: TrainState) -> tuple[TrainState, dict[str, Any]]:
    """Read a checkpoint into the structure of `template` (a freshly initialised state)."""
    meta = json.loads((path / CHECKPOINT_META).read_text())
    raw = eqx.tree_deserialise_leaves(path / CHECKPOINT, _key_data(template))
    state = jax.tree.map(
        lambda t, x: jr.wrap_key_data(x, impl=jr.key_impl(t)) if _is_key(t) else x, template, raw
    )
    return state, meta


def run(
    config: TrainConfig,
    run_config: RunConfig = RunConfig(),
    *,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train, evaluate, log, checkpoint and plot; resumable.

    Every `eval_every` iterations: evaluate all seeds, append a row to `metrics.jsonl`
    (and rewrite `metrics.csv`), save a checkpoint and call `callback(row)`. An interrupted
    run (Ctrl-C included) resumes from its last checkpoint and continues exactly as if it
    had not stopped.

    **Arguments:**

    - `config`: the training configuration.
    - `run_config`: budget, seeds and output settings.
    - `callback`: called with each evaluation row (e.g. to log elsewhere).

    **Returns:** a [`RunResult`][deepcrl.crl.RunResult].
    """
    trainer = Trainer(config)
    per_iter = config.env_steps_per_iteration
    total_iters = -(-run_config.total_env_steps // per_iter)
    _check_lr_decay(config.agent, (total_iters - trainer.warmup_iterations) * config.sgd_steps)
    out = Path(run_config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _init(trainer, seed_keys(run_config.seed, run_config.num_seeds))
    history: list[dict[str, Any]] = []
    cfg = config_to_dict(config)
    meta = {"config": cfg, "seed": run_config.seed, "num_seeds": run_config.num_seeds}
    if run_config.resume and (out / CHECKPOINT).exists():
        state, saved = load_checkpoint(out, state)
        for name in ("config", "seed", "num_seeds"):
            if saved[name] != meta[name]:
                raise ValueError(
                    f"The checkpoint in {out} was made with another {name} "
                    f"({saved[name]} != {meta[name]}); use another out_dir or resume=False."
                )
        history = _read_history(out, upto=int(state.iteration[0]))
    else:
        (out / METRICS).unlink(missing_ok=True)
    (out / "config.json").write_text(json.dumps(config_to_dict(config, run_config), indent=1))

    bar = _progress(run_config, total_iters * per_iter, int(state.iteration[0]) * per_iter)
    start_time = time.perf_counter() - (history[-1]["time"] if history else 0.0)
    metrics: dict[str, Any] = {}
    try:
        while (iteration := int(state.iteration[0])) < total_iters:
            if iteration < trainer.warmup_iterations:
                state, metrics = _warmup(trainer, state)
            else:
                state, metrics = _train(trainer, state)
            iteration += 1
            bar.update(per_iter)
            last = iteration == total_iters
            if iteration > trainer.warmup_iterations and (
                iteration % run_config.eval_every == 0 or last
            ):
                row = _evaluate(trainer, state, run_config, metrics)
                row["time"] = time.perf_counter() - start_time
                history.append(row)
                _append_row(out, row)
                save_checkpoint(out, state, meta)
                bar.set_postfix(
                    success=f"{row['eval/success']:.2f}",
                    loss=f"{row.get('train/critic_loss', float('nan')):.2f}",
                )
                if callback is not None:
                    callback(row)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"Interrupted at iteration {int(state.iteration[0])}; rerun to resume from the "
            f"last checkpoint in {out}."
        )
        raise
    bar.close()
    final = history[-1] if history else {}
    if run_config.plots and history:
        from ._plots import save_run_plots

        save_run_plots(trainer, jax.tree.map(lambda x: x[0], state), history, out)
    (out / "summary.json").write_text(json.dumps(final, indent=1))
    return RunResult(state=state, history=history, final=final)


def _check_lr_decay(agent: CRLConfig, updates: int) -> None:
    # Learning rates that decay to zero before the end would spend the rest of the run
    # collecting data that no update uses.
    if agent.lr_final_scale == 0 and 0 < agent.lr_decay_updates < updates:
        raise ValueError(
            f"The run makes {updates} SGD steps, but the learning rates reach 0 after "
            f"lr_decay_updates={agent.lr_decay_updates}; set lr_decay_updates={updates} "
            "(or lr_final_scale > 0)."
        )


def _over_seeds(fn: Callable, *axes: int | None) -> Callable:
    # The trainer (and its MJX models) is an argument, not a closure constant, so programs
    # stay small and one compilation serves every run with an equal configuration.
    return eqx.filter_jit(eqx.filter_vmap(fn, in_axes=(None, *axes)))


_init = _over_seeds(Trainer.init, 0)
_warmup = _over_seeds(Trainer.warmup_iteration, 0)
_train = _over_seeds(Trainer.train_iteration, 0)
_evaluate_seeds = _over_seeds(Trainer.evaluate, 0, 0)


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Keys of a run's seeds: seed `s` gets `fold_in(key(seed), s)`, so the first seed of a
    multi-seed run is the single-seed run."""
    return jax.vmap(lambda s: jr.fold_in(jr.key(seed), s))(jnp.arange(num_seeds))


def _evaluate(
    trainer: Trainer,
    state: TrainState,
    run_config: RunConfig,
    train_metrics: dict[str, Any],
) -> dict[str, Any]:
    iteration = int(state.iteration[0])
    # Evaluation keys depend on the iteration only: a resumed run evaluates identically.
    eval_keys = jax.vmap(lambda k: jr.fold_in(k, iteration))(
        seed_keys(run_config.seed + 1_000_003, run_config.num_seeds)
    )
    metrics, _ = _evaluate_seeds(trainer, state, eval_keys)
    row: dict[str, Any] = {
        "iteration": iteration,
        "env_steps": int(state.env_steps[0]),
        "sgd_steps": int(state.agent.updates[0]),
    }
    for name, value in (train_metrics | metrics).items():
        per_seed = np.asarray(value, dtype=np.float64)
        row[name] = float(per_seed.mean())
        if name.startswith("eval/") and per_seed.size > 1:
            row[name + "_per_seed"] = per_seed.tolist()
    return row


def _append_row(out: Path, row: dict[str, Any]) -> None:
    with open(out / METRICS, "a") as f:
        f.write(json.dumps(row) + "\n")
    _write_csv(out, _read_history(out))


def _read_history(out: Path, upto: int | None = None) -> list[dict[str, Any]]:
    path = out / METRICS
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if upto is not None:
        # Rows written after the checkpoint belong to iterations that will be redone.
        rows = [r for r in rows if r["iteration"] <= upto]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _write_csv(out: Path, rows: list[dict[str, Any]]) -> None:
    columns = [k for k in rows[0] if not k.endswith("_per_seed")]
    lines = [",".join(columns)]
    lines += [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    (out / "metrics.csv").write_text("\n".join(lines) + "\n")


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
