"""Where a run was trained: the software and the machine, recorded at each start.

Float arithmetic differs between CPUs, accelerators and library versions, and RL amplifies
the difference: the same configuration and seed can end at another success on another
machine. A run that resumes on another machine is trained by both, so every start is
recorded, with the iteration it started from.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any

import jax

from ._files import atomic_write_text

STARTS = "starts.jsonl"
# The packages whose versions decide a run's arithmetic.
_PACKAGES = ("deepcrl", "jax", "jaxlib", "equinox", "optax", "mujoco", "mujoco-mjx", "numpy")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu() -> str:
    """The CPU's model name (Linux reports it in /proc/cpuinfo; `platform` often does not)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The software and hardware this process computes with."""
    return {
        "python": platform.python_version(),
        "packages": {package: _version(package) for package in _PACKAGES},
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "devices": [f"{d.platform}: {d.device_kind}" for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def record_start(out: Path, iteration: int, env_steps: int) -> None:
    """Add this start to `<out>/starts.jsonl` (written atomically): the time, the iteration
    and env steps per seed it starts from, and `machine()`. A line that is not a JSON object
    (a file damaged by hand) is dropped with a warning instead of stopping the run."""
    path = out / STARTS
    rows = []
    if path.exists():
        # Line by line from bytes: one undecodable byte damages its line, not the file.
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:  # UnicodeDecodeError included
                row = None
            if isinstance(row, dict):
                rows.append(row)
            elif line.strip():
                warnings.warn(f"{path}, line {number}: not a JSON object; dropped.", stacklevel=2)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    rows.append({"utc": now, "iteration": iteration, "env_steps": env_steps, **machine()})
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
