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
`<out>/<scale>/missed_goals.json` and prints one line per seed; then, for every setting in
that file, the success by the goals' distance from the start in three bands of cell moves
(mean over seeds with a bootstrap interval), in `<out>/<scale>/goal_distance.md`: on a maze
with many goals, such as the hardest maze's 45, the near goals hide the far ones in the
success rate.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import sweep

from deepcrl.train import eval_keys, load_run, metrics as M
from deepcrl.train._cli import bootstrap_interval
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
                "logged_success": M.per_seed(last, M.EVAL_SUCCESS)[i],
                "final_dist": float(np.asarray(episodes.final_dist[i]).mean()),
                "logged_final_dist": M.per_seed(last, M.EVAL_FINAL_DIST)[i],
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


def distance_bands(result: dict[str, list[dict]], bands: int = 3) -> list[tuple[int, int]]:
    """`bands` ranges of cell moves, as equal as whole moves allow, that cover the distances
    of every goal in `result` (`missed_goals`' output for one or more settings)."""
    if bands < 1:
        raise ValueError(f"bands={bands}: need at least one")
    moves = [d for seeds in result.values() for s in seeds for d, _, _ in s["goals"].values()]
    if not moves:
        raise ValueError("no goals: the result holds no episode")
    low, high = min(moves), max(moves)
    edges = np.floor(np.linspace(low, high + 1, bands + 1)).astype(int)
    return [(int(a), int(b) - 1) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def success_by_distance(seeds: list[dict], bands: list[tuple[int, int]]) -> list[list[float]]:
    """Per band, each seed's success over its episodes to goals in that band (a seed with no
    such episode is left out of that band)."""
    per_band = []
    for low, high in bands:
        rates = []
        for seed in seeds:
            counts = [(n, m) for d, n, m in seed["goals"].values() if low <= d <= high]
            episodes = sum(n for n, _ in counts)
            if episodes:
                rates.append(1 - sum(m for _, m in counts) / episodes)
        per_band.append(rates)
    return per_band


def distance_table(result: dict[str, list[dict]]) -> str:
    """Markdown: one line per setting, its success per band of goal distance."""
    if not result:
        return "No finished run.\n"
    bands = distance_bands(result)
    head = [f"goals {a}–{b} moves away" if a < b else f"goals {a} moves away" for a, b in bands]
    lines = [
        "| setting | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(bands),
    ]
    for name, seeds in result.items():
        cells = []
        for rates in success_by_distance(seeds, bands):
            if not rates:  # this setting's evaluations drew no goal in the band
                cells.append("—")
                continue
            low, high = bootstrap_interval(rates)
            per_seed = " ".join(f"{r:.0%}" for r in rates)
            cells.append(f"{np.mean(rates):.1%} ({low:.1%}–{high:.1%}; {per_seed})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merged_in_order(earlier: dict, new: dict, grid: list[str]) -> dict:
    """`earlier` entries updated with `new` ones, the others kept; all in the grid's order
    (names not in the grid last, as they came)."""
    merged = {**earlier, **new}
    return {name: merged[name] for name in sweep.in_order(merged, grid)}


def main() -> dict:
    parser = sweep.analysis_parser(__doc__)
    args = parser.parse_args()
    out, seeds, settings = sweep.finished_runs(parser, args)
    grid = list(__import__(args.experiment).SCALES[args.scale].grid)
    result = {}
    for s in settings:
        result[s.name] = missed_goals(s, out, seeds)
        for seed in result[s.name]:
            print(line(s.name, seed))

    merged = update_json(
        out / "missed_goals.json",
        lambda earlier: merged_in_order(earlier, result, grid),
        empty={},
        derived={"goal_distance.md": distance_table},
    )
    print("\nSuccess by the goal's distance from the start, mean over seeds (95% CI; per seed):")
    print(distance_table(merged))
    return result


if __name__ == "__main__":
    main()
