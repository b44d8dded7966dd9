"""Does the critic know a way its actor does not take? Where the actor stops short of a goal,
the action the critic values most, and the episodes of acting greedily on the critic.

    python examples/critic_greedy.py depth_sweep --scale cpu-large-uniform --only d4
    python examples/critic_greedy.py depth_sweep --scale cpu-large --directions 32

For every seed of a sweep's finished runs (with checkpoints), this replays the run's last
evaluation (its keys, so its starts and goals) twice: with the actor's deterministic action,
and acting greedily on the critic — each step the action of highest critic value among the
actor's own and `--directions` unit actions spread over the circle. It reports success per
goal cell under both rules.

Then, at the spot where each episode the actor missed took its last step (the agent at rest
there), it compares two actions: the actor's, and the best of the actor's and those
directions by the critic's value. For each it gives the angle to the straight line to the
goal and to the nearest first step of a shortest path through the maze (toward the centre
of an adjacent cell one move closer to the goal), and how much higher the critic values
its best action than the actor's. A critic that knows the way points along the maze where
its actor points at the wall. Greedy acting then tells whether that knowledge carries an
episode to the goal; it may not, because the critic values what follows under its own actor.

Writes `<out>/<scale>/critic_greedy.json` (one entry per setting and number of
directions; the others stay),
`critic_greedy.md` and `critic_greedy.png` (per goal cell, success under both rules, and
the maze with both actions drawn where the missed episodes ended).
"""

import dataclasses
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sweep
from jaxtyping import Array, Float, PRNGKeyArray

from deepcrl.envs import Layout
from deepcrl.train import AbstractLearner, Batch, eval_keys, load_run, metrics as M
from deepcrl.train._cli import bootstrap_interval, enable_compilation_cache
from deepcrl.train._files import update_json
from deepcrl.train._plots import draw_walls

_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))


def unit_directions(n: int) -> Float[Array, "n 2"]:
    """`n` unit actions at equal angles, the first along +x."""
    if n < 1:
        raise ValueError(f"--directions must be at least 1, got {n}.")
    angle = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return jnp.asarray(np.stack([np.cos(angle), np.sin(angle)], -1), jnp.float32)


class CriticGreedy(AbstractLearner):
    """`learner` with its evaluation rule replaced by the best of its actor's action and
    fixed `directions`, by its critic's value; training and exploration are `learner`'s."""

    learner: AbstractLearner
    directions: Float[Array, "k 2"]

    def __init__(self, learner: AbstractLearner, directions: Float[Array, "k 2"]):
        self.learner, self.directions = learner, directions

    @property
    def config(self) -> Any:  # pyright: ignore[reportIncompatibleVariableOverride]
        return self.learner.config

    def init(self, key: PRNGKeyArray, *, obs_size: int, goal_size: int, action_size: int) -> Any:
        return self.learner.init(
            key, obs_size=obs_size, goal_size=goal_size, action_size=action_size
        )

    def update(self, state: Any, batch: Batch, key: PRNGKeyArray) -> tuple[Any, dict[str, Array]]:
        return self.learner.update(state, batch, key)

    def act(self, state: Any, obs: Array, goal: Array, key: PRNGKeyArray) -> Array:
        return self.learner.act(state, obs, goal, key)

    def candidates(self, state: Any, obs: Array, goal: Array) -> tuple[Array, Array]:
        """The actions (the actor's first) and their values, `(k + 1, batch, …)`."""
        own = self.learner.act_eval(state, obs, goal)
        fixed = jnp.broadcast_to(self.directions[:, None], (len(self.directions), *own.shape))
        actions = jnp.concatenate([own[None], fixed.astype(own.dtype)])
        return actions, jax.vmap(lambda a: self.learner.value(state, obs, a, goal))(actions)

    def act_eval(self, state: Any, obs: Array, goal: Array) -> Array:
        actions, values = self.candidates(state, obs, goal)
        best = jnp.argmax(values, axis=0)
        return jnp.take_along_axis(actions, best[None, :, None], axis=0)[0]

    def value(self, state: Any, obs: Array, action: Array, goal: Array) -> Array:
        return self.learner.value(state, obs, action, goal)


@eqx.filter_jit
def _probe(greedy: CriticGreedy, state: Any, obs: Array, goal: Array) -> tuple[Array, Array]:
    """Per point: the actor's action, the critic's best, their values (`[actor, best]`)."""
    actions, values = greedy.candidates(state, obs, goal)
    best = jnp.argmax(values, axis=0)
    pick = lambda x: jnp.take_along_axis(x, best[None, :, None], axis=0)[0]  # noqa: E731
    return jnp.stack([actions[0], pick(actions)]), jnp.stack([values[0], values.max(axis=0)])


def angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Degrees between the rows of `u` and `v` (0 where either is zero)."""
    norms = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
    cos = np.where(norms > 0, np.sum(u * v, -1) / np.maximum(norms, 1e-12), 1.0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def maze_steps(layout: Layout, xy: np.ndarray, goal: np.ndarray) -> list[np.ndarray]:
    """Per point, the world vectors from it to the centres of the adjacent cells one move
    closer to the goal's cell (to the goal itself inside the goal's cell)."""
    here = np.asarray(layout.world_to_cell(xy)).tolist()
    there = np.asarray(layout.world_to_cell(goal)).tolist()
    steps = []
    for p, g, (i, j), target in zip(xy, goal, here, there, strict=True):
        to_goal = layout.distances(target)
        d = to_goal[i, j]
        closer = [(i + a, j + b) for a, b in _MOVES if d > 0 and to_goal[i + a, j + b] == d - 1]
        if closer:
            steps.append(np.asarray(layout.cell_to_world(np.array(closer, np.int32))) - p)
        else:
            steps.append((g - p)[None])
    return steps


def critic_greedy(s: sweep.Setting, out: Path, seeds: int, directions: int) -> dict:
    """Setting `s`'s finished run in `out`: per seed, success under both rules per goal
    cell, and the two actions where each missed episode ended."""
    run_config = sweep.run_config_of(s, out, seeds)
    state, history = load_run(s.trainer, run_config)
    keys = eval_keys(run_config, history[-1][M.ITERATION])
    greedy = CriticGreedy(s.trainer.learner, unit_directions(directions))
    by_rule = {
        "actor": sweep.episodes_per_seed(s.trainer, state, keys),
        "greedy": sweep.episodes_per_seed(
            dataclasses.replace(s.trainer, learner=greedy), state, keys
        ),
    }
    maze = s.trainer.eval_env
    layout = maze.layout  # pyright: ignore[reportAttributeAccessIssue]
    actor = by_rule["actor"]
    goal, last = np.asarray(actor.goal), np.asarray(actor.last)
    cells = np.asarray(layout.world_to_cell(goal))
    per_seed = []
    for i in range(goal.shape[0]):
        names = np.array([f"{r},{c}" for r, c in cells[i].tolist()])
        missed = ~np.asarray(actor.success[i], dtype=bool)
        seed_state = jax.tree.map(lambda x, i=i: x[i] if eqx.is_array(x) else x, state.learner)
        stops = _stops(greedy, maze, seed_state, last[i, missed], goal[i, missed], names[missed])
        per_seed.append(
            {
                "seed": i,
                "success": {r: float(np.mean(ep.success[i])) for r, ep in by_rule.items()},
                # Another compiled program than the run's: the actor's replay may differ from
                # what the run logged in the last bits of a float, so in an episode or two.
                "logged_success": M.per_seed(history[-1], M.EVAL_SUCCESS)[i],
                "by_goal": {r: _by_goal(names, ep.success[i]) for r, ep in by_rule.items()},
                "stops": stops,
            }
        )
    return {"setting": s.name, "directions": directions, "per_seed": per_seed}


def _by_goal(cells: np.ndarray, hits: Array) -> dict[str, float]:
    share = np.asarray(hits, dtype=np.float64)
    return {c: float(share[cells == c].mean()) for c in sorted(set(cells.tolist()))}


def _stops(
    greedy: CriticGreedy, maze: Any, state: Any, xy: np.ndarray, goal: np.ndarray, cells: np.ndarray
) -> list[dict]:
    """At each spot `xy` (at rest) with its goal: the actor's action and the critic's best,
    their angles to the straight line and to the maze's step, and the critic's value gain."""
    if not len(xy):
        return []
    obs, goals = maze.net_inputs(maze.observation_at(xy), jnp.asarray(goal))
    actions, values = (np.asarray(x) for x in _probe(greedy, state, obs, goals))
    steps, line = maze_steps(maze.layout, xy, goal), goal - xy
    rounded = lambda v, digits=3: [round(float(x), digits) for x in v]  # noqa: E731
    return [
        {
            "goal_cell": str(cell),
            "xy": rounded(xy[k]),
            "actor": rounded(actions[0, k]),
            "best": rounded(actions[1, k]),
            "to_line": rounded(angle(actions[:, k], line[k][None]), 1),
            "to_maze": [round(float(angle(a[None], steps[k]).min()), 1) for a in actions[:, k]],
            "value_gain": round(float(values[1, k] - values[0, k]), 4),
        }
        for k, cell in enumerate(cells)
    ]


def summary(result: dict) -> dict:
    """Over seeds (mean and 95% interval): success under both rules; over each seed's stops,
    the mean angles of both actions and the share where each is closer to the maze's step
    than to the straight line."""
    seeds = result["per_seed"]
    row: dict[str, Any] = {
        f"success_{r}": _interval([s["success"][r] for s in seeds]) for r in ("actor", "greedy")
    }
    stopped = [s["stops"] for s in seeds if s["stops"]]
    for k, who in enumerate(("actor", "best")):
        for what in ("to_line", "to_maze"):
            row[f"{who}_{what}"] = _interval([np.mean([x[what][k] for x in st]) for st in stopped])
        row[f"{who}_maze_wise"] = _interval(
            [np.mean([x["to_maze"][k] < x["to_line"][k] for x in st]) for st in stopped]
        )
    row["value_gain"] = _interval([np.mean([x["value_gain"] for x in st]) for st in stopped])
    row["stops"] = sum(len(st) for st in stopped)
    return row


def _interval(values: list) -> dict:
    if not values:
        return {"mean": None, "ci95": [None, None]}
    low, high = bootstrap_interval(values)
    return {"mean": float(np.mean(values)), "ci95": [low, high]}


def table(results: dict) -> str:
    def cell(x: dict, fmt: str) -> str:
        if x["mean"] is None:
            return "–"
        return f"{x['mean']:{fmt}} ({x['ci95'][0]:{fmt}}–{x['ci95'][1]:{fmt}})"

    head = (
        "| setting | directions | success, actor | success, greedy on the critic | stops "
        "| actor: angle to line / to maze | critic's best: angle to line / to maze "
        "| closer to the maze's step: actor / critic's best | value gain |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for result in results.values():
        r = summary(result)
        rows.append(
            f"| {result['setting']} | {result['directions']} | {cell(r['success_actor'], '.1%')} "
            f"| {cell(r['success_greedy'], '.1%')} | {r['stops']} "
            f"| {cell(r['actor_to_line'], '.0f')}° / {cell(r['actor_to_maze'], '.0f')}° "
            f"| {cell(r['best_to_line'], '.0f')}° / {cell(r['best_to_maze'], '.0f')}° "
            f"| {cell(r['actor_maze_wise'], '.0%')} / {cell(r['best_maze_wise'], '.0%')} "
            f"| {cell(r['value_gain'], '.2f')} |"
        )
    return head + "\n".join(rows) + "\n"


def plot(results: dict, layout: Layout, path: Path) -> None:
    """Per setting: success per goal cell under both rules (bars: mean; dots: seeds), and
    the maze with the actor's action (blue) and the critic's best (orange) at each stop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 4.6 * len(results)), squeeze=False)
    for result, (bars, maze) in zip(results.values(), axes, strict=True):
        seeds = result["per_seed"]
        name = f"{result['setting']}, {result['directions']} directions"
        goals = sorted({g for s in seeds for g in s["by_goal"]["actor"]})  # every seed's
        for k, (rule, colour) in enumerate((("actor", "tab:blue"), ("greedy", "tab:orange"))):
            per_seed = np.array([[s["by_goal"][rule].get(g, np.nan) for g in goals] for s in seeds])
            x = np.arange(len(goals)) + (k - 0.5) * 0.38
            label = "the actor" if rule == "actor" else "greedy on the critic"
            bars.bar(x, np.nanmean(per_seed, 0), 0.36, color=colour, alpha=0.6, label=label)
            for row in per_seed:
                bars.plot(x, row, "o", color=colour, ms=3)
        bars.set_xticks(range(len(goals)), [f"({g})" for g in goals])
        bars.set_xlabel("goal cell")
        bars.set_ylabel("success at the last evaluation")
        bars.set_ylim(0, 1.05)
        bars.set_title(f"{name}: success per goal")
        bars.legend(fontsize=8)
        draw_walls(maze, layout)
        stops = [x for s in seeds for x in s["stops"]]
        if stops:
            # The maze figures' convention: y across, x down (as `draw_walls` sets the axes).
            xy = np.array([x["xy"] for x in stops])
            for key, colour in (("actor", "tab:blue"), ("best", "tab:orange")):
                a = np.array([x[key] for x in stops])
                a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
                a *= 0.35 * layout.cell_size
                maze.quiver(
                    xy[:, 1], xy[:, 0], a[:, 1], a[:, 0], color=colour, angles="xy",
                    scale_units="xy", scale=1, width=0.004, alpha=0.5, zorder=3,
                )  # fmt: skip
        targets = np.asarray(
            layout.cell_to_world(np.array([[int(v) for v in g.split(",")] for g in goals]))
        )
        maze.plot(targets[:, 1], targets[:, 0], "*", color="tab:red", ms=12, zorder=4)
        maze.set_title(
            f"{name}: where missed episodes ended (goals: stars);\n"
            "the actor's action (blue), the critic's best (orange)",
            fontsize=9,
        )
        maze.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> dict:
    parser = sweep.analysis_parser(__doc__)
    parser.add_argument("--directions", type=int, default=16, help="unit actions to compare")
    args = parser.parse_args()
    unit_directions(args.directions)  # a clear error before anything loads
    out, seeds, settings = sweep.finished_runs(parser, args)
    enable_compilation_cache()
    result = {}
    for s in settings:
        # One entry per setting and number of directions.
        key = f"{s.name}/{args.directions}"
        result[key] = critic_greedy(s, out, seeds, args.directions)
        r = summary(result[key])
        actor, greedy = (r[f"success_{rule}"]["mean"] for rule in ("actor", "greedy"))
        print(f"{s.name}: success {actor:.1%} with the actor, {greedy:.1%} greedy on the critic")
    if not result:
        return result
    every = update_json(
        out / "critic_greedy.json",
        lambda earlier: {**earlier, **result},
        empty={},
        derived={"critic_greedy.md": table},
    )
    layout = settings[0].trainer.eval_env.layout  # pyright: ignore[reportAttributeAccessIssue]
    plot(every, layout, out / "critic_greedy.png")
    print(table(every))
    return every


if __name__ == "__main__":
    main()
