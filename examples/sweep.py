"""Resumable sweeps for the experiment scripts: many settings of a preset, each a vmapped
multi-seed run in a directory of its own.

A setting whose directory holds a finished run is read, not trained again; an interrupted
one resumes where its last checkpoint left it. After every setting the sweep rewrites
`<out>/results.json` and `<out>/results.md` (the final evaluation per setting: mean, 95%
bootstrap interval and every seed), so a sweep cut short keeps what it finished, and
rows of earlier partial sweeps into the same directory are kept. Several sweeps may share
one `--out`: a setting another process is training is skipped, and the rewrites of the
results take turns.
"""

import argparse
import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from deepcrl.train import (
    DivergenceError,
    RunConfig,
    RunLockedError,
    Trainer,
    load_history,
    metrics as M,
    run,
    run_ended,
)
from deepcrl.train._cli import bootstrap_interval, difference_text, enable_compilation_cache
from deepcrl.train._files import atomic_write_text, checkpoint_dirs, read_json, update_json
from deepcrl.train._run import run_identity

PARTS = ("learner", "env", "train", "run")
"""The parts of a preset (`Args` of `train_crl.py` / `train_td.py`) that settings address."""


def with_settings(args: Any, settings: Mapping[str, Any]) -> Any:
    """`args` with each setting applied to the one part (learner, env, train, run) that has
    a field of that name: `{"critic_depth": 16, "layout": "u4_maze", "batch_size": 512}`."""
    owners: dict[str, list[str]] = {}
    for part in PARTS:
        for f in dataclasses.fields(getattr(args, part)):
            owners.setdefault(f.name, []).append(part)
    for name in settings:
        if len(owners.get(name, [])) != 1:
            where = owners.get(name) or "no part"
            raise ValueError(f"Setting {name!r} must name a field of one of {PARTS}: {where}.")
    parts = {
        part: dataclasses.replace(
            getattr(args, part), **{k: v for k, v in settings.items() if owners[k] == [part]}
        )
        for part in PARTS
    }
    return dataclasses.replace(args, **parts)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One configuration of a sweep: what it varies (`labels`, the table's columns) and the
    trainer and run that realise it. Its directory is `<out>/<name>`."""

    name: str
    labels: Mapping[str, Any]
    trainer: Trainer
    run: RunConfig


def setting(
    name: str,
    labels: Mapping[str, Any],
    preset: Any,
    make_learner: Callable[[Any], Any],
    settings: Mapping[str, Any],
) -> Setting:
    """A `Setting` from a preset (`Args`) with `settings` applied (see `with_settings`)."""
    trainer, run_config = trainer_of(with_settings(preset, settings), make_learner)
    return Setting(name, dict(labels), trainer, run_config)


def trainer_of(args: Any, make_learner: Callable[[Any], Any]) -> tuple[Trainer, RunConfig]:
    """The trainer and run config of a preset (`Args`): the learner made from its learner
    config, its training and evaluation mazes, its training settings."""
    trainer = Trainer(make_learner(args.learner), args.env.make(), args.env.make_eval(), args.train)
    return trainer, args.run


def sweep(
    settings: Sequence[Setting],
    out: Path,
    *,
    seeds: int,
    progress: bool = True,
    order: Sequence[str] = (),
) -> list[dict]:
    """Train every setting that is not finished yet (seeds vmapped), and return one row per
    setting: its labels, env steps, wall time and final success and time at goal. The
    results files list the rows named in `order` first, in that order (see `write`)."""
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"Setting names must be unique, got {names}.")
    rows = []
    earlier = {r["name"]: r for r in read(out)}
    for s in settings:
        directory = out / s.name
        run_config = dataclasses.replace(run_config_of(s, out, seeds), progress=progress)
        finished = _finished(s, run_config)
        kept = earlier.get(s.name)
        if finished is None and not directory.exists() and kept and _seeds(kept) == seeds:
            # A row whose run folder was not kept (committed results, copied by --from):
            # it is a result; training the setting again would take hours and replace it.
            print(f"== {s.name}: kept its row of {out / 'results.json'} (no run folder; "
                  "delete the row to train it again)")  # fmt: skip
            rows.append(kept)
            continue
        if finished is None:
            print(f"== {s.name}: {seeds} seeds × {run_config.total_env_steps:,} env steps")
            try:
                run(s.trainer, run_config)
                finished = "summary"
            except RunLockedError:
                # Another sweep on this --out trains it and will write its row.
                print(f"== {s.name}: another process is training it; skipped")
                continue
            except DivergenceError as error:
                # One setting that diverges is a result; the others still run.
                print(f"== {s.name} diverged: {error}")
                atomic_write_text(directory / _DIVERGED, json.dumps({"error": str(error)}))
                finished = "diverged"
        history = load_history(directory)
        rows.append(summarise(s, history, seeds=seeds, diverged=finished == "diverged"))
        write(out, rows, order=order)
    return rows


_DIVERGED = "diverged.json"


def _seeds(row: dict) -> int:
    return len(row[M.EVAL_SUCCESS]["per_seed"])


def _finished(s: Setting, run_config: RunConfig) -> str | None:
    """`"summary"` or `"diverged"` when the setting's directory holds an ended run of this
    very configuration, `None` when there is (still) something to train. A directory made
    by another configuration is refused, not silently reported."""
    directory = Path(run_config.out_dir)
    ended = run_ended(directory)  # a run trained to its end after a divergence has ended
    diverged = not ended and (directory / _DIVERGED).exists()
    if not diverged and not ended:
        return None  # a partial run resumes after run()'s own configuration check
    saved = json.loads((directory / "config.json").read_text())
    now = run_identity(s.trainer, run_config)  # what a resume checks, too
    for key in ("config", "seed", "num_seeds"):
        if saved.get(key) != now[key]:
            raise ValueError(
                f"{directory} holds a finished run of another {key} than the setting "
                f"{s.name!r}; move it away, or use another --out."
            )
    if saved["run"]["total_env_steps"] != run_config.total_env_steps:
        raise ValueError(
            f"{directory} holds a finished run of {saved['run']['total_env_steps']:,} env steps, "
            f"the setting {s.name!r} asks for {run_config.total_env_steps:,}; use another --out."
        )
    if diverged and saved["run"]["max_loss"] != run_config.max_loss:
        # Another divergence threshold: resume from the last good checkpoint under it.
        (directory / _DIVERGED).unlink()
        return None
    return "diverged" if diverged else "summary"


@dataclasses.dataclass(frozen=True)
class Scale:
    """An experiment's size: the CRL preset it starts from, what every run changes in it,
    the seeds per setting, and the settings that vary (name → labels and settings)."""

    preset: str
    common: Mapping[str, Any]
    seeds: int
    grid: Mapping[str, Mapping[str, Any]]
    """Per setting name: its settings (fields of the preset) and tags."""
    labels: Sequence[str]
    """The table's columns: keys every grid entry has."""
    tags: Sequence[str] = ()
    """Grid keys that only name a setting (e.g. an ablation's name), not a preset field."""


def crl_settings(scale: Scale) -> list[Setting]:
    """The scale's grid as settings of the CRL preset `scale.preset`."""
    import train_crl

    from deepcrl.crl import CRL

    preset = train_crl.PRESETS[scale.preset][1]
    return [
        setting(name, labels_of(scale, name), preset, CRL, fields_of(scale, name))
        for name in scale.grid
    ]


def labels_of(scale: Scale, name: str) -> dict[str, Any]:
    """The table's columns of a grid entry."""
    grid = scale.grid[name]
    missing = [k for k in scale.labels if k not in grid]
    if missing:
        raise ValueError(f"Grid entry {name!r} has no value for the labels {missing}.")
    return {k: grid[k] for k in scale.labels}


def fields_of(scale: Scale, name: str) -> dict[str, Any]:
    """The settings of a grid entry, with the scale's common ones (its tags left out)."""
    every = {**scale.common, **scale.grid[name]}
    return {k: v for k, v in every.items() if k not in scale.tags}


def main(
    doc: str | None,
    scales: Mapping[str, Scale],
    plot: Callable[[list[dict], Path, Scale], None],
    default_out: str,
    build: Callable[[Scale], list[Setting]] = crl_settings,
    analyse: Callable[[list[Setting], Path, Scale, int], object] | None = None,
) -> list[dict]:
    """The command line of an experiment script: `--scale`, `--only NAME ...` (a part of the
    grid), `--seeds`, `--out`, `--from DIR` (see `seed_from`); trains what is missing,
    prints the table, draws the figure, then `analyse(settings, out, scale, seeds)` looks
    further into the trained runs."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(scales), default="cpu")
    parser.add_argument("--only", nargs="+", help="train only these settings of the grid")
    parser.add_argument("--seeds", type=int, help="instead of the scale's seeds")
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="first copy what the scale's folder lacks from an earlier sweep's folder, "
        "e.g. its committed results (docs/results/<experiment>)",
    )
    args = parser.parse_args()
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be a positive integer, got {args.seeds}.")
    scale = scales[args.scale]
    chosen = select(build(scale), args.only, scale)
    enable_compilation_cache()
    out = args.out / args.scale
    if args.source is not None:
        copied = seed_from(args.source, out)
        kept = sorted(p.name for p in out.iterdir() if (args.source / p.name).exists())
        kept = [name for name in kept if name not in copied]
        print(f"--from {args.source}: copied {', '.join(copied) or 'nothing'} into {out}")
        if kept:  # a file of both is not merged: out's own stays as it is
            print(f"--from {args.source}: {out} has its own {', '.join(kept)}; kept")
    seeds = scale.seeds if args.seeds is None else args.seeds
    sweep(chosen, out, seeds=seeds, order=list(scale.grid))
    rows = grid_rows(out, scale)
    counts = {r["name"]: _seeds(r) for r in rows}
    if len(set(counts.values())) > 1:  # rows kept from earlier runs with another --seeds
        print(f"Warning: the rows' seed counts differ ({counts}); compare them with care.")
    print(table(rows))
    if rows:  # none yet when another process holds the only chosen setting
        plot(rows, out, scale)
    if analyse is not None:
        analyse(chosen, out, scale, seeds)
    return rows


def grid_rows(out: Path, scale: Scale) -> list[dict]:
    """The rows of `<out>/results.json` that are settings of the scale's grid (not another
    grid's leftovers), in the grid's order, each with the grid's labels: a row written
    before the grid gained a label (kept while `--only` trains others) has it too."""
    rows = {r["name"]: r for r in read(out)}
    return [{**rows[name], **labels_of(scale, name)} for name in scale.grid if name in rows]


def select(settings: list[Setting], only: Sequence[str] | None, scale: Scale) -> list[Setting]:
    """The settings named in `only` (all when `None`); `ValueError` for a name not in the grid."""
    if not only:
        return settings
    unknown = set(only) - {s.name for s in settings}
    if unknown:
        raise ValueError(f"--only {sorted(unknown)}: not in the grid {list(scale.grid)}.")
    return [s for s in settings if s.name in only]


def seed_from(source: Path, out: Path) -> list[str]:
    """Copy into `out` every file and folder of `source` that `out` does not have, and
    return their names; nothing in `out` is overwritten. E.g. a sweep's committed results
    (`docs/results/<experiment>/`) into a fresh run folder: the sweep then keeps their rows,
    reads their finished runs instead of training them again, and adds its own.

    **Raises:** `ValueError` when `source` is not a directory.
    """
    if not source.is_dir():
        raise ValueError(f"--from {source}: not a directory.")
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in sorted(source.iterdir()):
        target = out / item.name
        if target.exists() or item.name.startswith("."):
            continue  # out's own, or a lock file
        # Copied under another name, then renamed: a kill leaves no half-copied run that a
        # resume would take for its own.
        partial = out / f".{item.name}.copying"
        if partial.is_dir():
            shutil.rmtree(partial)
        if item.is_dir():
            shutil.copytree(item, partial)
        else:
            shutil.copy2(item, partial)
        os.replace(partial, target)
        copied.append(item.name)
    return copied


def loadable(s: Setting, out: Path) -> bool:
    """Whether setting `s`'s run in `out` trained to its end and keeps its checkpoints, so
    an analysis can load it: a run still training or one that diverged has not ended, and a
    finished run copied without checkpoints (as `docs/results/` keeps them) has only its
    metrics."""
    return run_ended(out / s.name) and bool(checkpoint_dirs(out / s.name))


def analysis_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line of an analysis of a finished sweep: the experiment script's name,
    its scale and settings, and the `--seeds` and `--out` the sweep was given."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("experiment", help="an experiment script's name, e.g. depth_sweep")
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--only", nargs="+", help="only these settings of the grid")
    parser.add_argument("--seeds", type=int, help="as the sweep was given (default: as its runs "
                        "were made)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="the sweep's --out (default runs/<experiment>)")
    return parser


def finished_runs(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[Path, int, list[Setting]]:
    """For `analysis_parser`'s `args`: the sweep's folder, its seeds (`--seeds`, else the
    runs' own) and the settings with a run there that an analysis can load (each other one
    is named and skipped)."""
    experiment = __import__(args.experiment)
    if args.scale not in experiment.SCALES:
        parser.error(f"--scale {args.scale!r}: not one of {sorted(experiment.SCALES)}.")
    scale = experiment.SCALES[args.scale]
    build = getattr(experiment, "settings", crl_settings)
    out = (args.out or Path("runs") / args.experiment) / args.scale
    found = []
    for s in select(build(scale), args.only, scale):
        if loadable(s, out):
            found.append(s)
        else:
            print(f"{s.name}: no finished run with checkpoints in {out / s.name}; skipped")
    if args.seeds is not None:
        return out, args.seeds, found
    made = {s.name: json.loads((out / s.name / "config.json").read_text())["run"]["num_seeds"]
            for s in found}  # fmt: skip
    if len(set(made.values())) > 1:
        parser.error(f"the runs in {out} were made with different seed counts {made}: "
                     "choose them with --only and --seeds.")  # fmt: skip
    return out, next(iter(made.values()), scale.seeds), found


def run_config_of(s: Setting, out: Path, seeds: int) -> RunConfig:
    """The run config that `sweep` gives setting `s` in `out` (e.g. to load its run)."""
    return dataclasses.replace(s.run, num_seeds=seeds, out_dir=str(out / s.name))


# Every seed's evaluation episodes, one seed per state and key; one jitted function, so the
# analyses of a sweep's runs share its compiled programs.
episodes_per_seed = eqx.filter_jit(eqx.filter_vmap(Trainer.evaluate_episodes, in_axes=(None, 0, 0)))


def goal_distances(trainer: Trainer, starts: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Cell moves along the evaluation maze from each episode's start to its goal."""
    layout = trainer.eval_env.layout  # pyright: ignore[reportAttributeAccessIssue]
    a = np.asarray(layout.world_to_cell(starts)).reshape(-1, 2)
    b = np.asarray(layout.world_to_cell(goals)).reshape(-1, 2)
    moves = [layout.geodesic_distance(x.tolist(), y.tolist()) for x, y in zip(a, b, strict=True)]
    return np.asarray(moves).reshape(starts.shape[:-1])


def summarise(s: Setting, history: list[dict], *, seeds: int, diverged: bool = False) -> dict:
    """A setting's row: its labels, how far it ran, and the last evaluation per seed. A run
    that diverged reaches no goal: its final success and time at goal are 0 for every seed,
    and `diverged` says after how many env steps."""
    final = history[-1] if history else {M.ENV_STEPS: 0, M.TIME: 0.0}
    row = {"name": s.name, **s.labels, "env_steps": final[M.ENV_STEPS], "wall_s": final[M.TIME]}
    row["diverged"] = diverged
    for metric in (M.EVAL_SUCCESS, M.EVAL_TIME_AT_GOAL):
        if diverged or not history:
            per_seed = np.zeros(seeds)
        else:
            per_seed = np.asarray(M.per_seed(final, metric), dtype=float)
        low, high = bootstrap_interval(per_seed)
        row[metric] = {
            "mean": float(per_seed.mean()),
            "ci95": [low, high],
            "per_seed": per_seed.tolist(),
        }
    row["curve"] = {
        "env_steps": [r[M.ENV_STEPS] for r in history],
        M.EVAL_SUCCESS: [M.per_seed(r, M.EVAL_SUCCESS) for r in history],
    }
    return row


def write(out: Path, rows: list[dict], order: Sequence[str] = ()) -> list[dict]:
    """Merge `rows` into `<out>/results.json` by name (other rows stay) and write the table
    `<out>/results.md`. The rows named in `order` come first, in that order (the table's
    differences are from its first row, so a grid's first setting, not the first to
    finish); the others follow as they were. Returns every row, in the file's order."""
    path = out / "results.json"

    def merge(earlier: list) -> list[dict]:
        merged = {r["name"]: r for r in _ours(earlier, path)}
        merged.update({r["name"]: r for r in rows})
        return [merged[name] for name in in_order(merged, order)]

    return update_json(path, merge, empty=[], derived={"results.md": table})


def in_order(names: Iterable[str], order: Sequence[str]) -> list[str]:
    """`names` with those in `order` first, in that order; the others after, as they came."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda name: rank.get(name, len(rank)))


def read(out: Path) -> list[dict]:
    """The rows of `<out>/results.json` (rows without a name, from another script, are
    left out with a message; a damaged file is set aside with a warning)."""
    path = out / "results.json"
    return _ours(read_json(path, empty=[]), path)


def _ours(rows: list, path: Path) -> list[dict]:
    ours = [r for r in rows if isinstance(r, dict) and "name" in r and "curve" in r]
    if len(ours) < len(rows):
        print(f"{path}: {len(rows) - len(ours)} rows not written by a sweep are left out.")
    return ours


def table(rows: list[dict]) -> str:
    """Markdown: one line per setting, its labels, then success (and its difference from
    the first setting's, with a bootstrap interval) and time at goal."""
    labels = [k for k in rows[0] if k not in _NOT_LABELS] if rows else []
    first = rows[0] if rows else {"name": "", M.EVAL_SUCCESS: {"per_seed": []}}
    lines = [
        "| " + " | ".join(labels) + " | env steps | final success, mean (95% CI) | per seed "
        f"| difference from {first['name']}, points (95% CI) "
        "| time at goal (95% CI) |",
        "|" + "---|" * (len(labels) + 5),
    ]
    for r in rows:
        s, t = r[M.EVAL_SUCCESS], r[M.EVAL_TIME_AT_GOAL]
        success = _with_interval(s, "{:.1%}")
        if r.get("diverged"):
            # `env_steps` is the last good evaluation's: the divergence came after it.
            success = f"diverged after {r['env_steps']:,} env steps (counted as 0%)"
        cells = [str(r.get(k, "")) for k in labels] + [
            f"{r['env_steps']:,}",
            success,
            " ".join(f"{x:.0%}" for x in s["per_seed"]),
            "—"
            if r is first
            else difference_text(s["per_seed"], first[M.EVAL_SUCCESS]["per_seed"]),
            _with_interval(t, "{:.0f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _with_interval(stat: dict, form: str) -> str:
    """ "mean (low–high)", or "mean (one seed)": one seed has no interval."""
    if len(stat["per_seed"]) < 2:
        return form.format(stat["mean"]) + " (one seed)"
    low, high = stat["ci95"]
    return f"{form.format(stat['mean'])} ({form.format(low)}–{form.format(high)})"


_NOT_LABELS = {
    "name",
    "env_steps",
    "wall_s",
    "curve",
    "diverged",
    M.EVAL_SUCCESS,
    M.EVAL_TIME_AT_GOAL,
}


def plot_against(
    rows: list[dict],
    path: Path,
    *,
    x: str,
    series: str | None = None,
    xlabel: str,
    title: str = "",
    log2: bool = True,
) -> None:
    """Final success (mean and 95% interval over seeds, seeds as dots) against the label
    `x`, one line per value of the label `series`; and the learning curves beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    groups: dict[Any, list[dict]] = {}
    for r in rows:
        groups.setdefault(r.get(series) if series else "", []).append(r)
    fig, (ax, curves) = plt.subplots(1, 2, figsize=(12, 4.2))
    # Series in the order of their values (4, 8, 16), not of the rows' arrival.
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0]))
    for i, (group, members) in enumerate(ordered):
        members = sorted(members, key=lambda r: r[x])
        # Series side by side at each x, so that their intervals do not hide each other.
        shift = 0.06 * (i - (len(groups) - 1) / 2)
        xs = np.array([r[x] for r in members], dtype=float)
        xs = xs * 2**shift if log2 else xs + shift * (xs.max() - xs.min() + 1)
        mean = np.array([r[M.EVAL_SUCCESS]["mean"] for r in members])
        ci = np.array([r[M.EVAL_SUCCESS]["ci95"] for r in members])
        label = f"{series} {group}" if series else None
        ax.errorbar(xs, mean, yerr=[mean - ci[:, 0], ci[:, 1] - mean], marker="o", capsize=4,
                    color=f"C{i}", label=label)  # fmt: skip
        for xv, r in zip(xs, members, strict=True):
            seeds = r[M.EVAL_SUCCESS]["per_seed"]
            ax.scatter(np.full(len(seeds), xv), seeds, color=f"C{i}", s=9, alpha=0.35)
        for j, r in enumerate(members):
            if not r["curve"]["env_steps"]:
                continue  # diverged before its first evaluation
            steps = np.asarray(r["curve"]["env_steps"])
            per_seed = np.asarray(r["curve"][M.EVAL_SUCCESS])
            band = np.array([bootstrap_interval(v) for v in per_seed])
            style = ("-", "--", ":", "-.")[j % 4]
            curves.plot(steps, per_seed.mean(axis=1), color=f"C{i}", ls=style,
                        label=f"{r['name']} ({per_seed.shape[1]} seeds)")  # fmt: skip
            curves.fill_between(steps, band[:, 0], band[:, 1], color=f"C{i}", alpha=0.12)
    if log2:
        ax.set_xscale("log", base=2)
        xticks = sorted({float(r[x]) for r in rows})
        ax.set_xticks(xticks, [f"{v:g}" for v in xticks])
        # Half an octave of margin: with one x value the series' offsets stay small.
        ax.set_xlim(xticks[0] / 2**0.5, xticks[-1] * 2**0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final success (mean, 95% CI; dots: seeds)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    curves.set_xlabel("environment steps")
    curves.xaxis.set_major_formatter(EngFormatter(sep=""))
    curves.set_ylabel("evaluation success (mean, 95% CI)")
    curves.set_ylim(-0.03, 1.03)
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
