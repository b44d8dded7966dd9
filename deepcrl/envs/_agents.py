"""The bodies that move through a maze: their MJCF, observation, action and termination.

An agent is a static description (an `eqx.Module` with only static fields): it writes its part
of the maze's MJCF, turns an action into controls or velocities, reads its observation from
`mjx.Data` and says when an episode terminates early.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._mjx import mjx

QposQvel = tuple[Float[Array, " nq"], Float[Array, " nv"]]


class AbstractAgent(eqx.Module):
    """What [`Maze`][deepcrl.envs.Maze] needs from an agent."""

    name: ClassVar[str]
    # Solver and MJX contact-culling defaults (see `maze_mjcf`); whether the floor collides.
    solver_iterations: ClassVar[int]
    ls_iterations: ClassVar[int]
    max_contact_points: ClassVar[int]
    max_geom_pairs: ClassVar[int]
    floor_contype: ClassVar[int]
    obs_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]
    timestep: eqx.AbstractVar[float]
    n_substeps: eqx.AbstractVar[int]
    # Largest body radius (in the xy plane) around its centre; bounds start-position noise.
    radius: eqx.AbstractVar[float]

    @abc.abstractmethod
    def mjcf(self) -> tuple[str, str, str]:
        """`(option attributes, worldbody XML, actuator XML)` for this agent."""

    @abc.abstractmethod
    def reset_state(self, xy: Float[Array, "2"], key: PRNGKeyArray) -> QposQvel:
        """Initial `(qpos, qvel)` with the agent's centre at `xy`."""

    @abc.abstractmethod
    def canonical_state(self, xy: Float[Array, "2"]) -> QposQvel:
        """Noise-free `(qpos, qvel)` at rest with the centre at `xy`."""

    @abc.abstractmethod
    def act(self, data: mjx.Data, action: Float[Array, " action"]) -> mjx.Data:
        """Apply an action in `[-1, 1]^action_size` before the physics substeps."""

    def observe(self, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"]) -> Float[Array, " obs"]:
        """The observation: `qpos` then `qvel` (the agent's centre xy first)."""
        return jnp.concatenate([qpos, qvel])

    def terminated(self, data: mjx.Data) -> Bool[Array, ""]:
        """`True` when the episode must end early (never, by default)."""
        del data
        return jnp.array(False)


class PointAgent(AbstractAgent):
    """A frictionless sphere on two slide joints `(x, y)`, velocity-commanded.

    Each env step sets the joint velocities to `action · max_step / (timestep · n_substeps)`, so a
    saturated action moves the centre `max_step` world units along each axis per env step when
    nothing is in the way; walls stop it through (frictionless, `condim=1`) contacts.
    Observation `[x, y, vx, vy]`.
    """

    name: ClassVar[str] = "point"
    # One Newton step with one line-search step solves the few frictionless contacts of a
    # sphere as well as more (same penetration measured) at 2-3× the speed of 4 line-search steps.
    solver_iterations: ClassVar[int] = 1
    ls_iterations: ClassVar[int] = 1
    # One sphere against boxes no larger than a cell touches at most three walls at once.
    max_contact_points: ClassVar[int] = 4
    max_geom_pairs: ClassVar[int] = 4
    floor_contype: ClassVar[int] = 0
    radius: float = eqx.field(static=True)
    max_step: float = eqx.field(static=True)
    timestep: float = eqx.field(static=True)
    n_substeps: int = eqx.field(static=True)
    obs_size: int = eqx.field(static=True, default=4)
    action_size: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not self.radius > 0:
            raise ValueError(f"radius must be positive, got {self.radius}.")
        if not self.max_step > 0:
            raise ValueError(f"max_step must be positive, got {self.max_step}.")

    @property
    def max_speed(self) -> float:
        return self.max_step / (self.timestep * self.n_substeps)

    def mjcf(self) -> tuple[str, str, str]:
        r = self.radius
        option = f'timestep="{self.timestep}" gravity="0 0 0"'
        body = f"""
    <body name="agent" pos="0 0 {r}">
      <joint name="x" type="slide" axis="1 0 0" limited="false"/>
      <joint name="y" type="slide" axis="0 1 0" limited="false"/>
      <geom name="agent" type="sphere" size="{r}" mass="1" contype="1" conaffinity="1"
            condim="1" rgba="0.2 0.4 0.9 1"/>
    </body>"""
        return option, body, ""

    def reset_state(self, xy: Float[Array, "2"], key: PRNGKeyArray) -> QposQvel:
        del key
        return self.canonical_state(xy)

    def canonical_state(self, xy: Float[Array, "2"]) -> QposQvel:
        return xy, jnp.zeros(2, dtype=xy.dtype)

    def act(self, data: mjx.Data, action: Float[Array, " action"]) -> mjx.Data:
        return data.replace(qvel=jnp.float32(self.max_speed) * action)


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...], scale: float) -> Float[Array, "..."]:
    return jr.uniform(key, shape, minval=-scale, maxval=scale)
