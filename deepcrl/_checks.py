"""Checks of the integers that configure the package, shared by its modules: each refuses a bad
value with a `ValueError` that names it, before it can fail deep inside JAX or Equinox."""

import operator
from typing import Any


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer: ints, NumPy ints and integer scalar arrays are; floats
    (2.5, NaN, inf) are not, nor are bools (a mistaken flag, not a size)."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def as_integer(name: str, value: Any) -> int:
    """`value` as an `int` (see `is_integer`): sizes become array shapes, and a float would
    pass a range check, then fail or quietly change a shape inside JAX."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    return operator.index(value)


def check_int(name: str, value: Any, *, minimum: int) -> None:
    """A plain `int` >= `minimum` (configurations that are written to JSON)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
