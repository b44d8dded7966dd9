"""Quiet access to `mujoco.mjx` (its import prints "Failed to import warp" when Warp is absent)."""

import contextlib
import io
from typing import Any

import jax
import mujoco

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx


@contextlib.contextmanager
def mjx_numerics():
    """Trace MJX under JAX's default promotion rules (callers may run with strict ones)."""
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        yield


def mj_model(xml: str) -> Any:
    """A host `mujoco.MjModel` compiled from an MJCF string."""
    # The compiled extension has no type stubs for pyright.
    return mujoco.MjModel.from_xml_string(xml)  # pyright: ignore[reportAttributeAccessIssue]


__all__ = ["mj_model", "mjx", "mjx_numerics", "mujoco"]
