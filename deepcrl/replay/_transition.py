import equinox as eqx
from jaxtyping import Array, Float, PyTree, Shaped


class Transition(eqx.Module):
    """One stored time step: what was observed, what was done, and the commanded goal.

    The next step of the same trajectory is the next row of the buffer (see
    [`sample_relabelled`][deepcrl.replay.sample_relabelled], which returns it).
    """

    obs: Float[Array, "*batch obs"]
    action: Float[Array, "*batch action"]
    goal: Float[Array, "*batch goal"]


class Relabelled(eqx.Module):
    """What [`sample_relabelled`][deepcrl.replay.sample_relabelled] returns: for each row,
    a stored step, the step after it and a later step of the same trajectory (the
    hindsight goal's source), each with the buffer's structure."""

    now: PyTree[Shaped[Array, "batch ..."]]
    next: PyTree[Shaped[Array, "batch ..."]]
    future: PyTree[Shaped[Array, "batch ..."]]
