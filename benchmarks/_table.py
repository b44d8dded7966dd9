"""Printing and saving benchmark tables (Markdown for the docs, JSON for machines)."""

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

RESULTS = Path(__file__).parent / "results"


def device_name() -> str:
    """The device the benchmark ran on, e.g. `cpu (2 cores)` or `NVIDIA H100 80GB HBM3`."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        import os

        return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    return str(getattr(device, "device_kind", device.platform))


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of equal keys as a Markdown table."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def save_table(name: str, title: str, rows: Sequence[dict[str, Any]], notes: str = "") -> Path:
    """Print a table and save it as `results/<name>-<platform>.md` and `.json`."""
    platform_name = jax.devices()[0].platform
    text = f"### {title}\n\nDevice: {device_name()}; jax {jax.__version__}.\n\n"
    text += markdown_table(rows) + ("\n\n" + notes if notes else "") + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{platform_name}.md"
    path.write_text(text)
    meta = {"device": device_name(), "jax": jax.__version__}
    path.with_suffix(".json").write_text(json.dumps({**meta, "rows": list(rows)}, indent=1))
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)
