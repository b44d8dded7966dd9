"""Depth sweep: success against the depth of actor and critic together, and depth against
width at a comparable cost.

    python examples/depth_sweep.py                    # point U-maze, depths 4-64 (CPU, hours)
    python examples/depth_sweep.py --only d4 d8       # a part of the sweep
    python examples/depth_sweep.py --scale cpu-u4     # point U4-maze, depths 4, 8, 16 and width 256
    python examples/depth_sweep.py --scale cpu-big    # big maze, depths 4, 8, 16 and width 256
    python examples/depth_sweep.py --scale cpu-big-long   # the same at 2× the env steps
    python examples/depth_sweep.py --scale cpu-u5     # point U5-maze, the long budget
    python examples/depth_sweep.py --scale cpu-medium # OGBench medium maze, the big maze's budget
    python examples/depth_sweep.py --scale cpu-medium-long  # the same at 2× the env steps
    python examples/depth_sweep.py --scale cpu-large  # OGBench large maze, the U5-maze's budget
    python examples/depth_sweep.py --scale cpu-large-uniform  # the same, starts anywhere
    python examples/depth_sweep.py --scale cpu-hardest       # the paper's hardest maze
    python examples/depth_sweep.py --scale cpu-hardest-long  # the same at 2× the env steps
    python examples/depth_sweep.py --scale paper      # Ant U4-maze, depths 4-64 (for a GPU)

The CRL preset of the scale with actor and critic at each depth, and wider depth-4 networks
beside them: at the CPU scale depth 4 at width 256 has the parameters of depth 16 at width
128 (a block's four `width × width` layers dominate); at the paper scale depth 4 at widths
1024 and 2048 against depth 8 at width 256 (the depth work's comparison).

Every setting is a vmapped multi-seed run in `<out>/<scale>/<name>/`, resumable; finished
ones are skipped. Writes `<out>/<scale>/results.json`, `results.md` and `depth_sweep.png`;
then every finished setting's value maps (B, as in `examples/value_maps.py`: the rank
correlation of the critic's values with −geodesic and −Euclidean distance to the farthest
goal, per seed) into `value_maps.json`, `value_maps.md` and `value_maps.png`.
"""

from pathlib import Path

import sweep
import value_maps

from deepcrl.train import load_run


def _net(depth: int, width: int) -> dict:
    return {
        "actor_depth": depth,
        "critic_depth": depth,
        "actor_width": width,
        "critic_width": width,
    }


LABELS = ["actor_depth", "actor_width"]
# The larger mazes' grid: depths 4, 8, 16 at width 128, and depth 4 with depth 16's parameters.
MAZE_GRID = {**{f"d{d}": _net(d, 128) for d in (4, 8, 16)}, "d4-w256": _net(4, 256)}


def _maze(**run: object) -> sweep.Scale:
    """A larger maze's scale: the point preset with `run`'s changes, five seeds, MAZE_GRID."""
    return sweep.Scale("point", run, 5, MAZE_GRID, LABELS)


# OGBench's large maze: branches and dead ends, the first task's start and the goals of the
# other four tasks, 8, 13, 15 and 15 cells away (the fifth's goal is that start). The U5-maze's
# episode length and budget, its longest way being one cell shorter.
LARGE = {"layout": "large", "episode_length": 300, "total_env_steps": 1_536_000}
SCALES = {
    "cpu": sweep.Scale(
        "point",
        {},
        5,
        {**{f"d{d}": _net(d, 128) for d in (4, 8, 16, 32, 64)}, "d4-w256": _net(4, 256)},
        LABELS,
    ),
    # A longer maze on the same preset: evaluation goals 7-10 cells from the start (the
    # U-maze's are 4-6), so twice the env steps.
    "cpu-u4": _maze(layout="u4_maze", total_env_steps=768_000),
    # A maze with branches and dead ends: nine evaluation goals 8-11 cells from the start.
    "cpu-big": _maze(layout="big_maze", total_env_steps=768_000),
    # Depths 8 and 16 levelled off together near 80% on `cpu-big` by its end: twice the
    # env steps tell whether the deeper one pulls ahead given time, and whether depth 4
    # (deep or wide) catches up.
    "cpu-big-long": _maze(layout="big_maze", total_env_steps=1_536_000),
    # The paper's hardest maze for depth 4 (Ant U5-maze: time at goal 0.97 at depth 4, 61 at
    # 64): eight evaluation goals 9-16 cells along one corridor. Episodes of 300 steps keep
    # the big maze's slack over the shortest path (16 cells take at least 128 steps), and the
    # long budget, so that a depth-4 failure is not one of time.
    "cpu-u5": _maze(layout="u5_maze", episode_length=300, total_env_steps=1_536_000),
    # OGBench's medium maze, between the big maze and the large one: the first task's start
    # and the goals of its first four tasks (the fifth's goal is that start), 4, 7, 9 and 10
    # cells away (the big maze's 8-11), at the big maze's budget and episode length.
    "cpu-medium": _maze(layout="medium", total_env_steps=768_000),
    # Depth 4 never finds the way to one of `cpu-medium`'s goals: twice the env steps tell
    # whether time makes up for depth there, as it does on the big maze.
    "cpu-medium-long": _maze(layout="medium", total_env_steps=1_536_000),
    "cpu-large": _maze(**LARGE),
    # The paper's hardest maze (Ant: time at goal 215 at depth 4, 387 at 64), where training
    # and evaluation goals are the same 45 cells, 1-15 moves from the start along branches
    # and loops: a graded task rather than one far goal. The U5-maze's 300-step episodes (15
    # moves take at least 120 steps) at the big maze's first budget.
    "cpu-hardest": _maze(layout="hardest_maze", episode_length=300, total_env_steps=768_000),
    # No setting of `cpu-hardest` solves it, and every curve is level by its end: twice the
    # env steps tell whether time closes what depth does not, and whether depth 16's lead
    # over depth 4 grows or shrinks.
    "cpu-hardest-long": _maze(layout="hardest_maze", episode_length=300, total_env_steps=1_536_000),
    # Both depths reach only one goal of four on `cpu-large`, stalled behind walls, with
    # Euclidean value maps: training starts and goals spread over the whole maze (evaluation
    # unchanged) tell whether the collected trajectories' coverage is what is missing.
    "cpu-large-uniform": _maze(**LARGE, start_goal="uniform"),
    "paper": sweep.Scale(
        "ant",
        {"layout": "u4_maze"},
        5,
        {
            **{f"d{d}": _net(d, 256) for d in (4, 8, 16, 32, 64)},
            **{f"d4-w{w}": _net(4, w) for w in (1024, 2048)},
        },
        LABELS,
    ),
}


def plot(rows: list[dict], out: Path, scale: sweep.Scale) -> None:
    sweep.plot_against(
        rows,
        out / "depth_sweep.png",
        x="actor_depth",
        series="actor_width",
        xlabel="actor and critic depth",
        title=f"Depth sweep ({scale.preset}, {scale.common.get('layout', 'u_maze')})",
    )


def maps(settings: list[sweep.Setting], out: Path, scale: sweep.Scale, seeds: int) -> list[dict]:
    """The value maps of every finished setting that keeps its checkpoints, in the order of
    the scale's labels (the rows of earlier runs of the script, or copied with `--from`,
    stay)."""
    rows = []
    for s in settings:
        if sweep.loadable(s, out):
            state, history = load_run(s.trainer, sweep.run_config_of(s, out, seeds))
            rows.append(value_maps.value_maps_of(s.name, dict(s.labels), s.trainer, state, history))
    by_labels = lambda r: tuple(r["settings"][k] for k in scale.labels)  # noqa: E731
    return value_maps.write(rows, out, by_labels) if rows else []


if __name__ == "__main__":
    sweep.main(__doc__, SCALES, plot, "runs/depth_sweep", analyse=maps)
