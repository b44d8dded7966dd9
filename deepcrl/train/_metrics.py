"""Names of the metrics a run logs, defined once: plots and scripts import them, so a typo is
an `AttributeError`, not a silently missing curve."""

EVAL_SUCCESS = "eval/success"
"""Share of evaluation episodes that reached their goal at least once."""
EVAL_TIME_AT_GOAL = "eval/time_at_goal"
"""Steps per evaluation episode spent within the goal threshold."""
EVAL_FINAL_DIST = "eval/final_dist"
"""Distance to the goal after an evaluation episode's last step."""
COLLECT_SUCCESS = "collect/success"
"""Share of collection steps that ended within the goal threshold."""
COLLECT_EPISODES = "collect/episodes"
"""Episodes ended per iteration, over all training environments."""
CRITIC_LOSS = "train/critic_loss"
"""The learner's critic loss (InfoNCE for CRL; the TD loss for TD)."""
ITERATION = "iteration"
ENV_STEPS = "env_steps"
SGD_STEPS = "sgd_steps"
TIME = "time"
"""Wall-clock seconds since the run started (resumed runs continue the count)."""
ENV_STEPS_PER_S = "env_steps_per_s"
"""Environment steps per second of training (collection and updates) since the last row."""
PER_SEED = "_per_seed"
"""Suffix of the per-seed values of an evaluation metric (multi-seed runs)."""


def train(name: str) -> str:
    """The logged name of a learner's update metric."""
    return f"train/{name}"


def per_seed(row: dict, name: str) -> list[float]:
    """A logged row's values of an evaluation metric, one per seed (a single value when the
    row has no per-seed entry)."""
    return list(row.get(name + PER_SEED, [row[name]]))
