"""Which evaluation goals each seed of a sweep's finished runs misses at its last evaluation.

    python examples/missed_goals.py collector_learner --only c4-l4 c8-l4
    python examples/missed_goals.py depth_sweep --out runs/depth_sweep

A success rate cannot tell "never reaches one goal" from "sometimes misses every goal". This
replays each finished run's last evaluation (the same keys, so the same starts and goals;
another compiled program, so actions may differ in the last bits of a float, and the
success is printed beside the logged one where they differ) and counts, per seed and per
goal cell, the episodes and those that never reached their goal, with the goal's distance
from the start in cell moves along the maze, and the cells where the missed episodes took
their last step (stuck at a wall, or on the way when time ran out). Writes
`<out>/<scale>/missed_goals.json` and prints one line per seed.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import sweep

from deepcrl.train import eval_keys, load_run, metrics as M
from deepcrl.train._files import update_json


def missed_goals(s: sweep.Setting, out: Path, seeds: int) -> list[dict]:
    """Per seed of setting `s`'s finished run in `out`: its success at the last evaluation
    and mean final distance to the goal (each beside what the run logged), and per goal
    cell `[cell moves from the start, episodes, missed]` and, for the missed, how many ended
    in each cell."""
    run_config = sweep.run_config_of(s, out, seeds)
    state, history = load_run(s.trainer, run_config)
    last = history[-1]
    keys = eval_keys(run_config, last[M.ITERATION])
    episodes = sweep.episodes_per_seed(s.trainer, state, keys)
    reached = np.asarray(episodes.success, dtype=bool)
    goal = np.asarray(episodes.goal)
    moves = sweep.goal_distances(s.trainer, np.asarray(episodes.start), goal)
    layout = s.trainer.eval_env.layout  # pyright: ignore[reportAttributeAccessIssue]
    cells, ends = (np.asarray(layout.world_to_cell(xy)) for xy in (goal, episodes.last))
    per_seed = []
    for i in range(reached.shape[0]):
        keys_i, ends_i = ([f"{r},{c}" for r, c in a[i].tolist()] for a in (cells, ends))
        misses = [(c, e) for c, e, hit in zip(keys_i, ends_i, reached[i], strict=True) if not hit]
        total, missed = Counter(keys_i), Counter(c for c, _ in misses)
        ended = {c: Counter(e for g, e in misses if g == c) for c in missed}
        distance = dict(zip(keys_i, moves[i].tolist(), strict=True))
        per_seed.append(
            {
                "seed": i,
                "success": float(reached[i].mean()),
                "logged_success": float(last[M.EVAL_SUCCESS + M.PER_SEED][i]),
                "final_dist": float(np.asarray(episodes.final_dist[i]).mean()),
                "logged_final_dist": float(last[M.EVAL_FINAL_DIST + M.PER_SEED][i]),
                "goals": {c: [distance[c], total[c], missed[c]] for c in sorted(total)},
                "missed_ended_in": {c: dict(sorted(ended[c].items())) for c in sorted(ended)},
            }
        )
    return per_seed


def line(name: str, seed: dict) -> str:
    ends = seed["missed_ended_in"]
    where = lambda c: ", ".join(f"({e}) {k}" for e, k in ends[c].items())  # noqa: E731
    missed = [
        f"({c}) {m} of {n}, {d} moves, ended in {where(c)}"
        for c, (d, n, m) in seed["goals"].items()
        if m
    ]
    logged = seed["logged_success"]
    replayed = "" if seed["success"] == logged else f" (the run logged {logged:.1%})"
    return f"{name} seed {seed['seed']}: {seed['success']:.1%}{replayed} — missed " + (
        "; ".join(missed) if missed else "none"
    )


def main() -> dict:
    parser = sweep.analysis_parser(__doc__)
    out, seeds, settings = sweep.finished_runs(parser, parser.parse_args())
    result = {}
    for s in settings:
        result[s.name] = missed_goals(s, out, seeds)
        for seed in result[s.name]:
            print(line(s.name, seed))
    # The other settings' entries stay.
    update_json(out / "missed_goals.json", lambda earlier: {**earlier, **result}, empty={})
    return result


if __name__ == "__main__":
    main()
