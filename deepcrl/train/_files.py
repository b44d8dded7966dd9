"""A run directory's files: written atomically, read with checks, guarded by a lock.

Every file is written to a temporary name in the same directory, flushed to disk and then
renamed over the old one, so a kill at any instant leaves either the old or the new file,
never a torn one. A checkpoint is a directory (`checkpoints/<iteration>/`: `state.eqx` and
`meta.json`, which holds the state's SHA-256, the configuration and the metrics history)
renamed into place in one step; the previous checkpoint is kept until the next one is
complete.
"""

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from .._checks import check_int

CHECKPOINTS = "checkpoints"
STATE = "state.eqx"
META = "meta.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
# The run's plots (`save_run_plots`).
LEARNING_CURVE, VALUE_HEATMAP, TRAJECTORIES = PLOTS = (
    "learning_curve.png",
    "value_heatmap.png",
    "trajectories.png",
)
LOCK = ".lock"


class CheckpointError(ValueError):
    """A run directory whose files cannot be resumed from (damaged, or another run's)."""


class RunLockedError(RuntimeError):
    """Another process is running in the same output directory."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` by `text` in one step (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, or a kill's interrupt: leave no temporary behind
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def to_json(data: Any) -> str:
    """Strict JSON (non-finite floats become `null`, so any reader can parse it)."""
    return json.dumps(_finite_or_none(data), indent=1, allow_nan=False)


def _finite_or_none(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite_or_none(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite_or_none(v) for v in data]
    return data


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (released when the process ends, even on a
    kill). Without `wait`, `BlockingIOError` when another process holds it."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_json(
    path: Path,
    update: Callable[[Any], Any],
    *,
    empty: Any,
    derived: Mapping[str, Callable[[Any], str]] | None = None,
) -> Any:
    """Replace the JSON file `path` by `update(content)` (`empty` when there is no file
    yet) and rewrite the text files `derived` from the new content beside it (e.g.
    `{"results.md": table}`); returns the new content.

    Every file is written atomically, and all of it happens under a lock beside `path`,
    so processes updating one file take turns and none drops what another added. A file
    that does not parse is moved aside to `<name>.damaged` (with a warning), never
    overwritten: what it held can still be recovered by hand.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_json_lock(path)):
        new = update(_read_json_or_set_aside(path, empty))
        atomic_write_text(path, to_json(new))
        for name, render in (derived or {}).items():
            atomic_write_text(path.with_name(name), render(new))
    return new


def _json_lock(path: Path) -> Path:
    """The lock beside the JSON file `path` that its readers and writers take."""
    return path.with_name(f".{path.stem}.lock")


def read_json(path: Path, *, empty: Any) -> Any:
    """The content of the JSON file `path` (`empty` when there is none), read under the
    lock `update_json` takes, so never half-written. A file that does not parse is moved
    aside to `<name>.damaged` with a warning, as `update_json` does, and `empty` returned."""
    if not path.exists():
        return empty
    with file_lock(_json_lock(path)):
        return _read_json_or_set_aside(path, empty)


def _read_json_or_set_aside(path: Path, empty: Any) -> Any:
    if not path.exists():
        return empty
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # An earlier damaged copy stays, too: the first free name of .damaged, .damaged-1, …
        names = (f"{path.name}.damaged" + (f"-{k}" if k else "") for k in itertools.count())
        aside = next(p for p in map(path.with_name, names) if not p.exists())
        os.replace(path, aside)
        warnings.warn(
            f"{path} does not parse as JSON ({e}); moved aside to {aside.name}, starting anew.",
            stacklevel=3,
        )
        return empty


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out`, or `RunLockedError` when another run holds it."""
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(out / LOCK, wait=False))
        except BlockingIOError:
            raise RunLockedError(
                f"Another run is writing to {out}; wait for it to finish or use another out_dir."
            ) from None
        yield


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def _key_data(tree: Any) -> Any:
    """Typed PRNG keys as their raw uint32 data (what serialisation can store); of a tree
    of shapes, the shapes of that data."""

    def raw(x: Any) -> Any:
        if not _is_key(x):
            return x
        return (
            jax.eval_shape(jr.key_data, x)
            if isinstance(x, jax.ShapeDtypeStruct)
            else jr.key_data(x)
        )

    return jax.tree.map(raw, tree)


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (in-progress temporaries excluded)."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporaries that killed saves left behind: checkpoints (each one a whole
    state, replay buffer included) and the run's own files. Only for the holder of the run's
    lock: no other process is saving then."""
    for tmp in (*out.glob(".*.tmp"), *(out / CHECKPOINTS).glob(".*.tmp")):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def save_checkpoint(out: Path, state: Any, meta: dict[str, Any], *, keep: int = 2) -> Path:
    """Write `checkpoints/<iteration>/` atomically and keep only the newest `keep` (>= 1).

    `meta` must hold `iteration`; the state's SHA-256 is added to it. Saving an iteration
    that already has a checkpoint (a rerun after a crash) moves the old one aside before the
    new one takes its name: a kill between the two renames leaves the run at its previous
    checkpoint, never at a torn one.
    """
    check_int("keep", keep, minimum=1)
    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{int(meta['iteration']):09d}"
    tmp = root / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with open(tmp / STATE, "wb") as f:
            eqx.tree_serialise_leaves(f, _key_data(state))
            f.flush()
            os.fsync(f.fileno())
        meta = {**meta, "sha256": _sha256(tmp / STATE)}
        with open(tmp / META, "w") as f:
            f.write(to_json(meta))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)  # the files' names too, before the directory is renamed into place
    except BaseException:  # a whole state, replay buffer included: do not leave it behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    aside = root / f".{final.name}.{os.getpid()}.replaced.tmp"  # a stale temporary if killed
    if final.exists():  # the same iteration again (a rerun after a crash)
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(final, aside)
    os.rename(tmp, final)
    _fsync_dir(root)
    shutil.rmtree(aside, ignore_errors=True)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recovery(out: Path, bad: Path) -> str:
    older = [p for p in checkpoint_dirs(out) if p != bad and int(p.name) < int(bad.name)]
    hint = f"delete {bad} to resume from the previous checkpoint {older[-1]}, or " if older else ""
    return f"{hint}start afresh with resume=False (or another out_dir)."


def read_checkpoint_meta(out: Path, path: Path) -> dict[str, Any]:
    """A checkpoint's metadata, checked against its state file (a `CheckpointError` naming
    the damaged file and how to recover otherwise)."""
    meta_path, state_path = path / META, path / STATE
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or "sha256" not in meta or "iteration" not in meta:
            raise ValueError("missing fields")
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"Checkpoint metadata {meta_path} is missing or damaged ({e}); {_recovery(out, path)}"
        ) from None
    try:
        matches = _sha256(state_path) == meta["sha256"]
    except OSError:  # missing, or removed while read (a training run prunes old ones)
        matches = False
    if not matches:
        raise CheckpointError(
            f"Checkpoint state {state_path} is missing or damaged (its checksum does not match "
            f"{meta_path}); {_recovery(out, path)}"
        )
    return meta


@jax.jit
def _scalar() -> jax.Array:
    return jnp.zeros(())


def _as_key(data: jax.Array, dtype: Any) -> jax.Array:
    key = jr.wrap_key_data(data)  # the default implementation, as `jax.random.key` makes
    if key.dtype != dtype:
        raise ValueError(f"keys of type {key.dtype}, not {dtype}")
    return key


def load_checkpoint_state(out: Path, path: Path, like: Any) -> Any:
    """Read `path`'s state into the structure of `like`: a run's state or, better, its
    shapes (`eqx.filter_eval_shape` of its initialisation), which hold no memory, so that
    a resume needs room for one state, not two."""
    try:
        raw = eqx.tree_deserialise_leaves(path / STATE, _key_data(like))
        state = jax.tree.map(lambda t, x: _as_key(x, t.dtype) if _is_key(t) else x, like, raw)
    except Exception as e:  # a valid checksum but another structure: another program's file
        raise CheckpointError(
            f"Checkpoint state {path / STATE} does not fit this run's state ({e}); "
            f"{_recovery(out, path)}"
        ) from None
    # Placed where jitted programs put their outputs, as a fresh state is: a state placed
    # elsewhere would make the jitted training step compile a second time on resume.
    return jax.device_put(state, _scalar().sharding)


def write_history(out: Path, rows: list[dict[str, Any]]) -> None:
    """`metrics.jsonl` (one JSON row per evaluation) and `metrics.csv`, both atomically."""
    atomic_write_text(out / METRICS, "".join(to_json(r).replace("\n", "") + "\n" for r in rows))
    if rows:
        # Every row's keys, in order of appearance: rows of a run resumed from an older
        # version may lack metrics that later rows have.
        keys = dict.fromkeys(k for r in rows for k in r)
        columns = [k for k in keys if not k.endswith("_per_seed")]
        lines = [",".join(columns)]
        lines += [",".join(str(r.get(c, "")) for c in columns) for r in rows]
        atomic_write_text(out / "metrics.csv", "\n".join(lines) + "\n")


def run_ended(out_dir: str | Path) -> bool:
    """Whether the run in `out_dir` trained to its end: the run loop writes `summary.json`
    last, so a run still training, killed or stopped by divergence has none."""
    return (Path(out_dir) / SUMMARY).exists()


def load_history(out_dir: str | Path) -> list[dict[str, Any]]:
    """The evaluation rows of a run directory (`metrics.jsonl`), checked line by line.

    **Raises:** `CheckpointError` naming the file and line when a line is not a JSON object.
    """
    path = Path(out_dir) / METRICS
    if not path.exists():
        raise FileNotFoundError(f"No metrics in {out_dir}: {path} does not exist.")
    rows = []
    # Bytes, line by line: a damaged line that is not even UTF-8 is named like any other.
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)  # a UnicodeDecodeError is a ValueError
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise CheckpointError(
                f"{path} line {number} is damaged ({e}); the run's checkpoint holds the full "
                "history: rerun the training command to rewrite it."
            ) from None
        rows.append(row)
    return rows
