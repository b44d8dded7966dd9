"""Timing compiled calls against each other on a shared machine."""

import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jax

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: wall clock, and the process's CPU time (all threads)."""

    wall: list[float]
    cpu: list[float]


def interleaved(calls: Mapping[K, Callable[[], Any]], rounds: int) -> dict[K, Timing]:
    """Each call timed `rounds` times, every round timing each call once in turn, so a
    shared machine's load drift falls on all of them alike. Warm the calls up first."""
    times = {key: Timing([], []) for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(call())
            times[key].cpu.append(time.process_time() - cpu)
            times[key].wall.append(time.perf_counter() - wall)
    return times
