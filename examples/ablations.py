"""Ablations of the deep networks: without LayerNorm, and ReLU instead of swish, against the
full residual block at the same depth.

    python examples/ablations.py                     # point U-maze, depths 16 and 64 (CPU, hours)
    python examples/ablations.py --only d16-relu
    python examples/ablations.py --only d64-head_norm-relu
    python examples/ablations.py --scale cpu-u4      # point U4-maze, depth 16 (CPU, about 2 h)
    python examples/ablations.py --scale paper       # Ant U4-maze, depths 16 and 64 (for a GPU)

The CRL preset of the scale with actor and critic at each depth, once as built
(`Dense → LayerNorm → swish`), once without LayerNorm (`layer_norm=False`), once with
ReLU (`activation="relu"`), and once with a LayerNorm before the actor's heads
(`actor_head_norm=True`). At depth 64, where the block as built fails without that head
norm, the two ablations keep it (`head_norm-no_norm`, `head_norm-relu`).

Every setting is a vmapped multi-seed run in `<out>/<scale>/<name>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `ablations.png`;
then the value maps (B) of every finished setting that keeps its checkpoints, as
`depth_sweep.py` does: `value_maps.json`, `value_maps.md` and `value_maps.png`.
"""

from pathlib import Path

import depth_sweep
import sweep

ABLATIONS = {
    "full": {},
    "no_norm": {"layer_norm": False},
    "relu": {"activation": "relu"},
    # Not an ablation but an addition: a LayerNorm before the actor's heads, whose input
    # grows with depth (examples/actor_init.py).
    "head_norm": {"actor_head_norm": True},
    # At depth 64 the block as built fails by itself (its actor starts saturated), so the
    # ablations there are taken from the setting that works: the head norm kept.
    "head_norm-no_norm": {"actor_head_norm": True, "layer_norm": False},
    "head_norm-relu": {"actor_head_norm": True, "activation": "relu"},
}


def _grid(depths: tuple[int, ...], names: tuple[str, ...]) -> dict:
    return {
        f"d{d}-{name}": {"actor_depth": d, "critic_depth": d, "ablation": name, **ABLATIONS[name]}
        for d in depths
        for name in names
    }


DEPTH_16_AND_64 = _grid((16,), ("full", "no_norm", "relu", "head_norm")) | _grid(
    (64,), ("full", "head_norm", "head_norm-no_norm", "head_norm-relu")
)
LABELS = ["actor_depth", "ablation"]
SCALES = {
    "cpu": sweep.Scale("point", {}, 5, DEPTH_16_AND_64, LABELS, tags=["ablation"]),
    # The longer maze of `depth_sweep.py --scale cpu-u4`, where depth 16 is what holds every
    # seed: its d16 run is this scale's `d16-full` (the same configuration).
    "cpu-u4": sweep.Scale(
        "point",
        {"layout": "u4_maze", "total_env_steps": 768_000},
        5,
        _grid((16,), ("full", "no_norm", "relu")),
        LABELS,
        tags=["ablation"],
    ),
    "paper": sweep.Scale(
        "ant", {"layout": "u4_maze"}, 5, DEPTH_16_AND_64, LABELS, tags=["ablation"]
    ),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "ablations.png",
        x="actor_depth",
        series="ablation",
        xlabel="actor and critic depth",
        title=f"Ablations ({scale.preset}, {scale.common.get('layout', 'u_maze')})",
    )


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/ablations", analyse=depth_sweep.maps)
