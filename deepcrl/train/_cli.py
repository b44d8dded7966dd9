"""The command line shared by the example trainers: presets, flags for every setting, a
compilation cache, and a closing summary over seeds."""

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._checks import check_int
from . import _metrics as M
from ._learner import AbstractLearner
from ._run import RunResult, run
from ._trainer import Trainer


def enable_compilation_cache() -> Path:
    """Keep compiled programs on disk (`$XDG_CACHE_HOME/deepcrl/jax`): reruns, resumed
    runs and the next seeds skip most compilation."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = root / "deepcrl" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return cache


def train_main(
    presets: Mapping[str, tuple[str, Any]],
    make_learner: Callable[[Any], AbstractLearner],
    description: str | None,
) -> RunResult:
    """Parse `preset --flag ...`, train, and print the final evaluation.

    Each preset is `(help, args)` with `args` a dataclass with fields `learner`, `env`
    (a [`MazeConfig`][deepcrl.envs.MazeConfig]), `train` and `run`.
    """
    import tyro

    args = tyro.extras.overridable_config_cli(dict(presets), description=description)
    enable_compilation_cache()
    print(f"Training on {jax.devices()[0].platform}; outputs in {args.run.out_dir}")
    trainer = Trainer(make_learner(args.learner), args.env.make(), args.env.make_eval(), args.train)
    result = run(trainer, args.run)
    print(summary(result, args.env.episode_length))
    return result


def summary(result: RunResult, episode_length: int) -> str:
    """The final evaluation, the mean of the last five, and the spread over seeds."""
    final, last = result.final, result.history[-5:]
    recent = np.mean([row[M.EVAL_SUCCESS] for row in last])
    text = (
        f"Final evaluation after {final[M.ENV_STEPS]:,} env steps: "
        f"success {final[M.EVAL_SUCCESS]:.1%}, time at goal "
        f"{final[M.EVAL_TIME_AT_GOAL]:.1f}/{episode_length} steps ({final[M.TIME]:.0f} s); "
        f"mean of the last {len(last)} evaluations: success {recent:.1%}."
    )
    per_seed = final.get(M.EVAL_SUCCESS + M.PER_SEED)
    if per_seed:
        seeds = np.asarray(per_seed)
        low, high = bootstrap_interval(seeds)
        text += (
            f"\nOver {seeds.size} seeds: final success {seeds.mean():.1%} "
            f"(95% bootstrap interval {low:.1%}–{high:.1%}); {np.sum(seeds >= 0.95)} of "
            f"{seeds.size} seeds at ≥ 95%; per seed: " + ", ".join(f"{s:.0%}" for s in seeds)
        )
    return text


def bootstrap_interval(
    values: Any, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean of `values` (one value per seed)."""
    _check_bootstrap(level, resamples)
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    return _percentile_interval(_resampled_means(values, rng, resamples), level)


def _check_bootstrap(level: float, resamples: int) -> None:
    # NumPy would name neither: "Percentiles must be in the range [0, 100]" for level=95.
    if not 0 < level < 1:
        raise ValueError(f"level must be a probability in (0, 1), got {level!r}.")
    check_int("resamples", resamples, minimum=1)


def _resampled_means(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The means of `resamples` resamples of `values` with replacement."""
    return rng.choice(values, size=(resamples, values.size)).mean(axis=1)


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_difference(
    values: Any, baseline: Any, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """The difference of the means of `values` and `baseline` (independent runs, one value
    per seed each) and its percentile bootstrap interval, each run's seeds resampled on
    their own. An interval that excludes 0 separates the two means at that level."""
    _check_bootstrap(level, resamples)
    a, b = (np.asarray(v, dtype=np.float64) for v in (values, baseline))
    for name, v in (("values", a), ("baseline", b)):
        if v.ndim != 1 or v.size < 2:
            raise ValueError(f"{name} must hold one value per seed, two or more; got {v.shape}")
    rng = np.random.default_rng(seed)
    diffs = _resampled_means(a, rng, resamples) - _resampled_means(b, rng, resamples)
    return float(a.mean() - b.mean()), *_percentile_interval(diffs, level)


def difference_text(values: Any, baseline: Any) -> str:
    """`bootstrap_difference` for a table, in points: "+10.3 (−0.6 to +21.9)", or "n/a"
    where a run has one seed."""
    if min(np.size(values), np.size(baseline)) < 2:
        return "n/a (one seed)"
    diff, low, high = bootstrap_difference(values, baseline)
    return f"{diff * 100:+.1f} ({low * 100:+.1f} to {high * 100:+.1f})"
