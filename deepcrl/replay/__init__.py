"""Replay: a ring buffer of whole trajectories and hindsight relabelling of goals."""

from ._buffer import (
    TrajectoryBuffer as TrajectoryBuffer,
    buffer_init as buffer_init,
    buffer_insert as buffer_insert,
    can_sample as can_sample,
    sample_windows as sample_windows,
)
from ._relabel import (
    future_counts as future_counts,
    future_indices as future_indices,
    sample_relabelled as sample_relabelled,
    truncated_geometric as truncated_geometric,
)
from ._transition import Relabelled as Relabelled, Transition as Transition
