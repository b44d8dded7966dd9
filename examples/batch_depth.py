"""Batch size × depth: the depth work finds that a larger batch helps little at depth 4 and
helps once the networks are deep.

    python examples/batch_depth.py                    # point U-maze (CPU)
    python examples/batch_depth.py --only d4-b64 d8-b64
    python examples/batch_depth.py --scale cpu-medium # OGBench medium maze, batch 64-1024
    python examples/batch_depth.py --scale paper      # Ant U4-maze, batch 128-2048 (for a GPU)

The CRL preset of the scale at each batch size (the InfoNCE batch: every row's goal is a
negative for the others) and each depth of actor and critic together; nothing else changes,
so a larger batch also means more samples per SGD step.

Every setting is a vmapped multi-seed run in `<out>/<scale>/<name>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `batch_depth.png`.
"""

from pathlib import Path

import sweep


def _grid(depths: tuple[int, ...], batches: tuple[int, ...]) -> dict:
    return {
        f"d{d}-b{b}": {"actor_depth": d, "critic_depth": d, "batch_size": b}
        for d in depths
        for b in batches
    }


LABELS = ["actor_depth", "batch_size"]
SCALES = {
    "cpu": sweep.Scale("point", {}, 5, _grid((4, 8), (64, 256, 1024)), LABELS),
    # On the U-maze both depths reach the ceiling at batch 1024. OGBench's medium maze at
    # depth_sweep's `cpu-medium` budget leaves room: there depth 4 stalls at one goal behind a
    # wall at batch 256, and depth 8 gets past it on some seeds.
    "cpu-medium": sweep.Scale(
        "point",
        {"layout": "medium", "total_env_steps": 768_000},
        5,
        _grid((4, 8), (64, 256, 1024)),
        LABELS,
    ),
    "paper": sweep.Scale(
        "ant", {"layout": "u4_maze"}, 5, _grid((4, 16, 64), (128, 512, 2048)), LABELS
    ),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "batch_depth.png",
        x="batch_size",
        series="actor_depth",
        xlabel="batch size",
        title=f"Batch size × depth ({scale.preset}, {scale.common.get('layout', 'u_maze')})",
    )


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/batch_depth")
