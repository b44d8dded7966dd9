"""Batch size × depth: the depth work finds that a larger batch helps little at depth 4 and
helps once the networks are deep.

    python examples/batch_depth.py                    # point U-maze (CPU)
    python examples/batch_depth.py --only d4-b64 d8-b64
    python examples/batch_depth.py --scale cpu-medium # OGBench medium maze, batch 64-1024
    python examples/batch_depth.py --scale cpu-large  # OGBench large maze, 4× the SGD steps
    python examples/batch_depth.py --scale cpu-u4     # point U4-maze, 4× the SGD steps
    python examples/batch_depth.py --scale cpu-u5     # point U5-maze, 4× the SGD steps
    python examples/batch_depth.py --scale cpu-hardest  # hardest maze, depths 4, 16, 4× the steps
    python examples/batch_depth.py --scale cpu-hardest-long  # the same at 1.536M, depth 4
    python examples/batch_depth.py --scale paper      # Ant U4-maze, batch 128-2048 (for a GPU)

The CRL preset of the scale at each batch size (the InfoNCE batch: every row's goal is a
negative for the others) and each depth of actor and critic together; nothing else changes,
so a larger batch also means more samples per SGD step. On the medium maze `d4-b256-sgd200`
and `d8-b256-sgd200` see batch 1024's samples in batches of 256: four times the SGD steps
per iteration, the gradient computation of batch 1024, so that what the batch's size buys
is told apart from what its compute buys. On the large maze, where every depth stalls at
batch 256, `d4-b256-sgd200` asks whether that compute takes depth 4 further there too; on
the U4-, U5- and hardest mazes, where depth 16 beats depth 4, whether it stands in for depth.

Every setting is a vmapped multi-seed run in `<out>/<scale>/<name>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `batch_depth.png`;
then the value maps of every finished setting that keeps its checkpoints (B, as
`depth_sweep.py` does) into `value_maps.json`, `value_maps.md` and `value_maps.png`.
"""

from pathlib import Path

import sweep
import train_crl
from depth_sweep import SCALES as DEPTH_SCALES, maps


def _setting(depth: int, batch: int, sgd_steps: int) -> dict:
    """Actor and critic at `depth`, `batch` samples per SGD step, `sgd_steps` per iteration."""
    return {
        "actor_depth": depth,
        "critic_depth": depth,
        "batch_size": batch,
        "sgd_steps": sgd_steps,
    }


def _grid(depths: tuple[int, ...], batches: tuple[int, ...], sgd_steps: int) -> dict:
    """Every depth at every batch size, at the preset's SGD steps per iteration."""
    return {f"d{d}-b{b}": _setting(d, b, sgd_steps) for d in depths for b in batches}


LABELS = ["actor_depth", "batch_size", "sgd_steps"]
# The presets' SGD steps per iteration.
POINT_SGD_STEPS, ANT_SGD_STEPS = (train_crl.PRESETS[p][1].train.sgd_steps for p in ("point", "ant"))


def _four_times_the_steps(depths: tuple[int, ...]) -> dict:
    """Batch 256 with four times the point preset's SGD steps per iteration: batch 1024's
    samples and gradient arithmetic in batches of 256."""
    steps = 4 * POINT_SGD_STEPS
    return {f"d{d}-b256-sgd{steps}": _setting(d, 256, steps) for d in depths}


def _at_four_times_the_steps(depth_scale: str, depths: tuple[int, ...] = (4,)) -> sweep.Scale:
    """`depths` at batch 256 at the preset's and at four times the SGD steps, on the maze and
    budget of the depth sweep's scale `depth_scale`."""
    grid = {**_grid(depths, (256,), POINT_SGD_STEPS), **_four_times_the_steps(depths)}
    return sweep.Scale("point", DEPTH_SCALES[depth_scale].common, 5, grid, LABELS)


SCALES = {
    "cpu": sweep.Scale("point", {}, 5, _grid((4, 8), (64, 256, 1024), POINT_SGD_STEPS), LABELS),
    # On the U-maze both depths reach the ceiling at batch 1024. OGBench's medium maze at
    # depth_sweep's `cpu-medium` budget leaves room: there depth 4 stalls at one goal behind a
    # wall at batch 256, and depth 8 gets past it on some seeds. Batch 256 with four times the
    # SGD steps processes batch 1024's samples: the control for batch 1024's extra compute.
    "cpu-medium": sweep.Scale(
        "point",
        {"layout": "medium", "total_env_steps": 768_000},
        5,
        {
            **_grid((4, 8), (64, 256, 1024), POINT_SGD_STEPS),
            **_four_times_the_steps((4, 8)),
        },
        LABELS,
    ),
    # Depth 4 against itself with four times the SGD steps, on mazes of the depth sweep
    # (whose `d4` is `d4-b256` here). On OGBench's large maze every depth (4, 8, 16) misses
    # three goals of four: do the steps that took depth 4 past the medium maze's wall take it
    # further there? On the U4-, U5- and hardest mazes depth 16 beats depth 4: do they stand
    # in for depth? On the hardest maze, where they do and no setting solves the maze, depth
    # 16 too: do depth and updates add up? At twice its env steps, where depth 16's lead grew,
    # does depth 4's update rate keep up?
    **{
        scale: _at_four_times_the_steps(scale)
        for scale in ("cpu-large", "cpu-u4", "cpu-u5", "cpu-hardest-long")
    },
    "cpu-hardest": _at_four_times_the_steps("cpu-hardest", (4, 16)),
    "paper": sweep.Scale(
        "ant", {"layout": "u4_maze"}, 5, _grid((4, 16, 64), (128, 512, 2048), ANT_SGD_STEPS), LABELS
    ),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    # One line per depth; where some settings change the SGD steps, per (depth, SGD steps),
    # so that a setting with more steps is not drawn on its depth's line.
    series = "actor_depth"
    if len({r["sgd_steps"] for r in rows}) > 1:
        series = "depth, SGD steps per iteration"
        rows = [{**r, series: (r["actor_depth"], r["sgd_steps"])} for r in rows]
    sweep.plot_against(
        rows,
        out / "batch_depth.png",
        x="batch_size",
        series=series,
        xlabel="batch size",
        title=f"Batch size × depth ({scale.preset}, {scale.common.get('layout', 'u_maze')})",
    )


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/batch_depth", analyse=maps)
