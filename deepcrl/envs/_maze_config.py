import dataclasses

from ._layouts import LAYOUTS
from ._maze import BodyName, Maze, StartGoal


@dataclasses.dataclass(frozen=True)
class MazeConfig:
    """Every [`Maze`][deepcrl.envs.Maze] option, as a command line can set it, for a training
    maze and the maze that evaluates it.

    `make()` builds the training maze; `make_eval()` the evaluation maze: `eval_layout`,
    starts at its `R` cell and goals at its `G` cells (`start_goal="reference"`), no goal
    chaining, the same body, episode length and physics.
    """

    layout: str = "u_maze"
    """Maze layout for training (see `deepcrl.envs.LAYOUTS`)."""
    eval_layout: str | None = None
    """Layout for evaluation; default: `<layout>_eval` when it exists, else `layout`."""
    body: BodyName = "point"
    """Simulated body: a point mass (cheap, CPU) or the Ant quadruped."""
    episode_length: int = 1000
    """Steps per training and evaluation episode."""
    start_goal: StartGoal = "reference"
    """How training episodes draw start and goal (see `deepcrl.envs.Maze`)."""
    max_goal_distance: int = 3
    """Largest start-goal distance in cells for `start_goal="stitch"`."""
    chain_goals: float = 0.0
    """Probability per step at the goal that a training episode draws a new goal and goes on,
    so that trajectories string several paths together."""
    goal_threshold: float = 0.5
    """Success radius around the goal (world units)."""
    start_cell: tuple[int, int] | None = None
    """A fixed training start cell (`start_goal="reference"` only)."""
    goal_cell: tuple[int, int] | None = None
    """A fixed training goal cell (`start_goal="reference"` only)."""
    start_noise: float = 0.1
    """Starts are a cell centre plus uniform noise in ± this on each axis."""
    goal_noise: float = 0.0
    """Goals drawn from cells are the centre plus uniform noise in ± this on each axis."""
    solver_iterations: int | None = None
    """Constraint-solver iterations (default: the body's)."""
    ls_iterations: int | None = None
    """Line-search iterations (default: the body's)."""
    max_contact_points: int | None = None
    """MJX contact culling: deepest contacts kept (default: the body's)."""
    max_geom_pairs: int | None = None
    """MJX contact culling: geom pairs kept (default: the body's)."""

    def __post_init__(self):
        for name in ("layout", "eval_layout"):
            value = getattr(self, name)
            if value is not None and value not in LAYOUTS:
                raise ValueError(f"Unknown {name} {value!r}; expected one of {sorted(LAYOUTS)}.")

    @property
    def eval_layout_name(self) -> str:
        if self.eval_layout is not None:
            return self.eval_layout
        return f"{self.layout}_eval" if f"{self.layout}_eval" in LAYOUTS else self.layout

    def _physics(self) -> dict:
        return dict(
            body=self.body,
            episode_length=self.episode_length,
            goal_threshold=self.goal_threshold,
            solver_iterations=self.solver_iterations,
            ls_iterations=self.ls_iterations,
            max_contact_points=self.max_contact_points,
            max_geom_pairs=self.max_geom_pairs,
        )

    def make(self) -> Maze:
        """The training maze."""
        return Maze(
            self.layout,
            start_goal=self.start_goal,
            max_goal_distance=self.max_goal_distance,
            chain_goals=self.chain_goals,
            start_cell=self.start_cell,
            goal_cell=self.goal_cell,
            start_noise=self.start_noise,
            goal_noise=self.goal_noise,
            **self._physics(),
        )

    def make_eval(self) -> Maze:
        """The evaluation maze (reference starts and goals of `eval_layout`)."""
        return Maze(self.eval_layout_name, start_noise=self.start_noise, **self._physics())
