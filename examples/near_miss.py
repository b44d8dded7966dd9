"""Where the deterministic actor stops on its way into the farthest goal, and where the critic
says it should stop.

    python examples/near_miss.py --run runs/point_u_maze --seeds 1        # the quickstart run
    python examples/near_miss.py --run runs/point_seeds/crl-preset        # the seed study's ten
    python examples/near_miss.py --run runs/point_seeds/crl-depth8 --variant depth8
    python examples/near_miss.py --run runs/point_seeds/crl-depth4 --variant depth4

Loads the last checkpoint of a run of the CRL `point` preset (`--variant` as in
`point_seeds.py`, when the run used one). Per seed, along the straight line by which the
shortest path enters the farthest goal's cell (from the previous cell's centre through the
goal's centre and a quarter cell beyond), it finds

- the actor's rest point: where the deterministic action's component along the line changes
  sign, so the actor stops there (nearest the goal when it changes sign more than once);
- the critic's best point: where the value `V(s, π(s, g), g)` along the line is highest.

A rest point farther from the goal than the success radius is a near miss that no amount of
time fixes. Writes `<out>/near_miss.json`.
"""

import argparse
import dataclasses
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import point_seeds

from deepcrl.envs import Maze
from deepcrl.train import load_run
from deepcrl.train._files import atomic_write_text, to_json
from deepcrl.train._plots import farthest_goal

POINTS = 81


def along_the_entry(trainer, state) -> dict:
    """Per seed: the line's points, the actions along it, the values, the rest and best points."""
    maze = trainer.eval_env
    assert isinstance(maze, Maze)
    layout = maze.layout
    goal_cell = farthest_goal(layout)
    previous = layout.shortest_path(layout.start_cell, goal_cell)[-2]
    goal = np.asarray(layout.cell_to_world(np.asarray(goal_cell)), np.float32)
    before = np.asarray(layout.cell_to_world(np.asarray(previous)), np.float32)
    direction = (goal - before) / np.linalg.norm(goal - before)  # into the goal
    offset = np.linspace(-np.linalg.norm(goal - before), layout.cell_size / 4, POINTS)
    xy = (goal + offset[:, None] * direction).astype(np.float32)
    obs = maze.observation_at(jnp.asarray(xy))
    goals = jnp.broadcast_to(jnp.asarray(goal), (POINTS, 2))

    @eqx.filter_jit
    def probe(trainer, state):
        def one(s):
            o, g = maze.net_inputs(obs, goals)
            return trainer.learner.act_eval(s.learner, o, g), trainer.values(s, obs, goals)

        return jax.vmap(one)(state)

    actions, values = (np.asarray(x) for x in probe(trainer, state))
    rows = []
    for a, v in zip(actions, values, strict=True):
        push = a @ direction  # > 0: towards the goal (and past it)
        stops = np.nonzero((push[:-1] > 0) & (push[1:] <= 0))[0]
        rest = offset[stops[np.argmin(np.abs(offset[stops]))]] if stops.size else None
        rows.append({
            "rest_offset": None if rest is None else float(rest),
            "best_value_offset": float(offset[np.argmax(v)]),
            "near_miss": bool(rest is None or abs(rest) > maze.goal_threshold),
            "push_at_goal": float(push[np.argmin(np.abs(offset))]),
        })  # fmt: skip
    return {"goal_cell": list(goal_cell), "entry_from": list(previous), "seeds": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run directory of the point preset")
    parser.add_argument("--variant", default="preset", choices=sorted(point_seeds.VARIANTS))
    parser.add_argument("--seeds", type=int, default=10, help="the run's number of seeds")
    parser.add_argument("--out", help="where near_miss.json goes (default: the run directory)")
    args = parser.parse_args()
    trainer, run_config = point_seeds.variant("crl", args.variant)
    run_config = dataclasses.replace(run_config, num_seeds=args.seeds, out_dir=args.run)
    state, _ = load_run(trainer, run_config)
    result = along_the_entry(trainer, state)
    radius = trainer.eval_env.goal_threshold
    print(f"Into goal cell {tuple(result['goal_cell'])} from {tuple(result['entry_from'])}; "
          f"offsets along the line, 0 = the goal's centre, success within {radius}:")  # fmt: skip
    for i, r in enumerate(result["seeds"]):
        rest = "never stops" if r["rest_offset"] is None else f"{r['rest_offset']:+.2f}"
        print(f"seed {i}: actor rests at {rest}, critic's best point {r['best_value_offset']:+.2f}"
              f", push at the goal {r['push_at_goal']:+.2f}"
              f"{'  (near miss)' if r['near_miss'] else ''}")  # fmt: skip
    out = Path(args.out or args.run)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "near_miss.json", to_json(result))


if __name__ == "__main__":
    main()
