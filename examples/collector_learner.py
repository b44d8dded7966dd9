"""Collector × learner: does a deep network need data from a deep collector? The depth work
finds that a deep learner on a shallow collector's data is poor, and a shallow learner on a
deep collector's data too: only a deep collector with a deep learner wins.

    python examples/collector_learner.py                   # point U-maze, depths 4 and 8 (CPU)
    python examples/collector_learner.py --only c8-l4
    python examples/collector_learner.py --scale paper     # Ant U4-maze, depths 4 and 64 (GPU)

Each run trains two CRL agents on one stream of data (`deepcrl.train.Tandem`): the
collector, at its depth, acts and learns as usual; the learner, at its depth, makes an SGD
step on every same batch but never acts while data is collected. Evaluation is the
learner's. Everything else is the CRL preset of the scale.

Every pair is a vmapped multi-seed run in `<out>/<scale>/c<collector>-l<learner>/`,
resumable; finished ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and
`collector_learner.png`.
"""

import dataclasses
from pathlib import Path

import sweep
import train_crl

from deepcrl.crl import CRL
from deepcrl.train import Tandem


def _grid(depths: tuple[int, ...]) -> dict:
    return {
        f"c{c}-l{learner}": {"collector_depth": c, "learner_depth": learner}
        for c in depths
        for learner in depths
    }


LABELS = ["collector_depth", "learner_depth"]
SCALES = {
    # Depth 8 is the point preset's own depth: the shallowest that holds on ten seeds.
    "cpu": sweep.Scale("point", {}, 5, _grid((4, 8)), LABELS, tags=LABELS),
    "paper": sweep.Scale("ant", {"layout": "u4_maze"}, 5, _grid((4, 64)), LABELS, tags=LABELS),
}


def _crl(config, depth: int) -> CRL:
    return CRL(dataclasses.replace(config, actor_depth=depth, critic_depth=depth))


def settings(scale: sweep.Scale) -> list[sweep.Setting]:
    preset = train_crl.PRESETS[scale.preset][1]
    out = []
    for name, grid in scale.grid.items():

        def tandem(config, grid=grid) -> Tandem:
            return Tandem(
                collector=_crl(config, grid["collector_depth"]),
                learner=_crl(config, grid["learner_depth"]),
            )

        out.append(
            sweep.setting(
                name, sweep.labels_of(scale, name), preset, tandem, sweep.fields_of(scale, name)
            )
        )
    return out


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "collector_learner.png",
        x="learner_depth",
        series="collector_depth",
        xlabel="learner depth (actor and critic)",
        title=f"Collector × learner ({scale.preset}, {scale.common.get('layout', 'u_maze')})",
    )


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/collector_learner", settings)
