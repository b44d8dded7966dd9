"""Quiet access to `mujoco.mjx` (its import prints "Failed to import warp" when Warp is absent)."""

import contextlib
import io
from typing import Any

import mujoco

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx


def mj_model(xml: str) -> Any:
    """A host `mujoco.MjModel` compiled from an MJCF string."""
    # The compiled extension has no type stubs for pyright.
    return mujoco.MjModel.from_xml_string(xml)  # pyright: ignore[reportAttributeAccessIssue]


__all__ = ["mj_model", "mjx", "mujoco"]
