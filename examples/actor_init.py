"""A fresh actor at each depth: how large its residual stream is, and how much of its log-std
already sits at the floor, where the squash's gradient vanishes.

    python examples/actor_init.py                        # the CRL point preset's actor
    python examples/actor_init.py --depths 4 64 1024 --width 256
    python examples/actor_init.py --head-norm            # with a LayerNorm before the heads

The inputs are the preset's evaluation maze: the agent at rest at every free point of a
64 × 64 grid, with each goal cell's centre as the goal. For every depth and `--seeds` fresh
actors (init keys 0, 1, ...): the norm of the heads' input (the residual stream, or its
LayerNorm with `--head-norm`), the mean |raw log-std| before the squash, the fraction of
log-std entries within 0.05 of the floor (`LOG_STD_MIN`), and the squash's slope relative
to its largest (1 at raw 0, 0 when saturated). An actor that starts saturated cannot raise
its entropy, so the tuned α grows without bound (the depth sweep's depth 64 in the
experiments page).

Writes `<out>/actor_init.json` and `<out>/actor_init.md` (`actor_init_head_norm.*` with
`--head-norm`).
"""

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import train_crl
import value_maps

from deepcrl.crl import CRL
from deepcrl.nn._actor import LOG_STD_MIN, squash_log_std
from deepcrl.train._cli import bootstrap_interval
from deepcrl.train._files import atomic_write_text, to_json

FLOOR = 0.05
"""A log-std within this of `LOG_STD_MIN` counts as at the floor."""


def inputs(args: train_crl.Args) -> tuple[jax.Array, jax.Array]:
    """Every (observation, goal) pair: the agent at rest at each free point of the value
    maps' grid, each goal cell's centre as the goal."""
    maze = args.env.make_eval()
    layout = maze.layout
    points, is_free, _ = value_maps.grid_over(layout)
    free = points[is_free]
    goals = np.asarray(layout.cell_to_world(np.asarray(layout.goal_cells)), np.float32)
    obs = maze.observation_at(jnp.asarray(np.repeat(free, len(goals), 0)))
    return obs, jnp.asarray(np.tile(goals, (len(free), 1)))


def actor_at_init(
    args: train_crl.Args, depth: int, width: int, head_norm: bool, seed: int, obs, goal
) -> dict:
    """One fresh actor's statistics over all inputs."""
    config = dataclasses.replace(
        args.learner, actor_depth=depth, actor_width=width, actor_head_norm=head_norm
    )
    learner = CRL(config)
    actor = learner.make_actor(
        jr.key(seed), obs_size=obs.shape[-1], goal_size=goal.shape[-1], action_size=2
    )
    x = jnp.concatenate([obs, goal], -1)
    features = jax.vmap(actor.head_input)(x)
    _, raw = jnp.split(jax.vmap(actor.trunk.head)(features), 2, axis=-1)
    log_std = squash_log_std(raw)  # as the actor's own call, without a second forward pass
    return {
        "feature_norm": float(jnp.median(jnp.linalg.norm(features, axis=-1))),
        "abs_raw_log_std": float(jnp.abs(raw).mean()),
        "at_floor": float((log_std < LOG_STD_MIN + FLOOR).mean()),
        "slope": float((1 - jnp.tanh(raw) ** 2).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64, 256, 1024])
    parser.add_argument("--width", type=int, help="instead of the preset's actor width")
    parser.add_argument("--head-norm", action="store_true", help="actor_head_norm=True")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/actor_init"))
    cli = parser.parse_args()
    if cli.seeds < 1 or any(d < 4 or d % 4 for d in cli.depths):
        parser.error(f"--seeds must be ≥ 1 and depths multiples of 4, got {cli}.")
    args = train_crl.PRESETS["point"][1]
    width = cli.width or args.learner.actor_width
    obs, goal = inputs(args)
    rows = []
    for depth in cli.depths:
        per_seed = [
            actor_at_init(args, depth, width, cli.head_norm, s, obs, goal) for s in range(cli.seeds)
        ]
        row: dict = {"depth": depth, "width": width, "head_norm": cli.head_norm}
        row["inputs"] = int(obs.shape[0])
        for k in per_seed[0]:
            values = [p[k] for p in per_seed]
            row[k] = {"mean": float(np.mean(values)), "ci95": bootstrap_interval(values),
                      "per_seed": values}  # fmt: skip
        rows.append(row)
        print(_line(row))
    cli.out.mkdir(parents=True, exist_ok=True)
    name = "actor_init_head_norm" if cli.head_norm else "actor_init"
    atomic_write_text(cli.out / f"{name}.json", to_json(rows))
    header = (
        "| depth | width | head norm | heads' input norm (median) | mean raw log-std magnitude "
        "| log-std at the floor | squash slope (1 = none saturated) |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(_line(r) + "\n" for r in rows)
    table += f"\nMean over {cli.seeds} fresh actors (95% CI); {rows[0]['inputs']} inputs each.\n"
    atomic_write_text(cli.out / f"{name}.md", table)


def _line(r: dict) -> str:
    def cell(k: str, fmt: str) -> str:
        d = r[k]
        return f"{d['mean']:{fmt}} ({d['ci95'][0]:{fmt}}–{d['ci95'][1]:{fmt}})"

    cells = [cell("feature_norm", ".1f"), cell("abs_raw_log_std", ".2f"),
             cell("at_floor", ".1%"), cell("slope", ".2f")]  # fmt: skip
    return f"| {r['depth']} | {r['width']} | {r['head_norm']} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
