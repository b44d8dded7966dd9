"""The bodies that move through a maze: their MJCF, observation, action and termination.

A body is a static description (an `eqx.Module` with only static fields): it writes its part
of the maze's MJCF, turns an action into controls or velocities, reads its observation from
`mjx.Data` and says when an episode terminates early.
"""

import abc
import math
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._checks import check_int
from ._mjx import mjx

QposQvel = tuple[Float[Array, " nq"], Float[Array, " nv"]]


class AgentMJCF(NamedTuple):
    """A body's parts of the maze MJCF."""

    option: str
    """Attributes of `<option>` (timestep, gravity)."""
    flags: str
    """Attributes of `<option><flag>` (disabled pipeline stages)."""
    default: str
    """Top-level `<default>` children (a class for the agent's joints and geoms)."""
    body: str
    """The agent's `<body>`, placed in `<worldbody>`."""
    actuators: str
    """Children of `<actuator>`."""


class AbstractBody(eqx.Module):
    """What [`Maze`][deepcrl.envs.Maze] needs from a simulated body."""

    name: ClassVar[str]
    # Solver and MJX contact-culling defaults (see `maze_mjcf`).
    solver_iterations: ClassVar[int]
    ls_iterations: ClassVar[int]
    max_contact_points: ClassVar[int]
    max_geom_pairs: ClassVar[int]
    obs_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]
    timestep: eqx.AbstractVar[float]
    n_substeps: eqx.AbstractVar[int]
    # Largest body radius (in the xy plane) around its centre; bounds start-position noise.
    radius: eqx.AbstractVar[float]

    @abc.abstractmethod
    def mjcf(self) -> AgentMJCF:
        """This body's parts of the maze's MJCF."""

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


class PointBody(AbstractBody):
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
    radius: float = eqx.field(static=True)
    max_step: float = eqx.field(static=True)
    timestep: float = eqx.field(static=True)
    n_substeps: int = eqx.field(static=True)
    obs_size: int = eqx.field(static=True, default=4)
    action_size: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        for name in ("radius", "max_step", "timestep"):
            _check_positive(name, getattr(self, name))
        check_int("n_substeps", self.n_substeps, minimum=1)

    @property
    def max_speed(self) -> float:
        return self.max_step / (self.timestep * self.n_substeps)

    def mjcf(self) -> AgentMJCF:
        r = self.radius
        option = f'timestep="{self.timestep}" gravity="0 0 0"'
        body = f"""
    <body name="agent" pos="0 0 {r}">
      <joint name="x" type="slide" axis="1 0 0" limited="false"/>
      <joint name="y" type="slide" axis="0 1 0" limited="false"/>
      <geom name="agent" type="sphere" size="{r}" mass="1" contype="0" conaffinity="1"
            condim="1" rgba="0.2 0.4 0.9 1"/>
    </body>"""
        return AgentMJCF(option=option, flags="", default="", body=body, actuators="")

    def reset_state(self, xy: Float[Array, "2"], key: PRNGKeyArray) -> QposQvel:
        del key
        return self.canonical_state(xy)

    def canonical_state(self, xy: Float[Array, "2"]) -> QposQvel:
        return xy, jnp.zeros(2, dtype=xy.dtype)

    def act(self, data: mjx.Data, action: Float[Array, " action"]) -> mjx.Data:
        return data.replace(qvel=jnp.float32(self.max_speed) * action)


# The four legs: direction in the xy plane, ankle axis (perpendicular to the leg) and ankle
# range in degrees, as the reference model.
_LEGS = (
    ("front_left", (1, 1), (-1, 1), (30, 70)),
    ("front_right", (-1, 1), (1, 1), (-70, -30)),
    ("back_left", (-1, -1), (-1, 1), (-70, -30)),
    ("back_right", (1, -1), (1, 1), (30, 70)),
)
# Reference actuator order: leg 4, then legs 1, 2, 3 (hip before ankle).
_ACTUATOR_LEGS = (3, 0, 1, 2)
# Default posture: torso at 0.55, upright; hips straight, ankles bent ±1 rad (legs 1..4).
_ANT_QPOS0 = (0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)


class AntBody(AbstractBody):
    """The reference quadruped: a spherical torso on a free joint and four two-hinge legs.

    As the reference (Brax ant, used by the JaxGCRL and deep CRL ant mazes): 8 hinge joints
    (hips ±30°, ankles 30°–70°), motors of gear 150 with controls in `[-1, 1]`, timestep 0.01 s
    with 5 substeps per env step (0.05 s), joint armature 1 and damping 1, density 5, friction
    `1 0.5 0.5`, and the episode terminates when the torso height leaves `healthy_z`
    (0.2 to 1.0). Resets add uniform noise of ±`reset_noise` to every coordinate of the default
    posture and Gaussian noise of scale `reset_noise` to the velocities.

    Only the feet touch the floor, so a flipped ant sinks and terminates, as the reference. One
    difference, for speed: the walls collide with the torso and feet spheres only (capsule-box
    contacts are about 20× slower in MJX).

    Observation: `qpos` (15: torso xyz, torso quaternion, 8 joint angles) then `qvel` (14).
    """

    name: ClassVar[str] = "ant"
    solver_iterations: ClassVar[int] = 1
    ls_iterations: ClassVar[int] = 4
    max_contact_points: ClassVar[int] = 8
    max_geom_pairs: ClassVar[int] = 8
    healthy_z: tuple[float, float] = eqx.field(static=True, default=(0.2, 1.0))
    reset_noise: float = eqx.field(static=True, default=0.1)
    gear: float = eqx.field(static=True, default=150.0)
    timestep: float = eqx.field(static=True, default=0.01)
    n_substeps: int = eqx.field(static=True, default=5)
    radius: float = eqx.field(static=True, default=1.22)  # foot tip: 0.8·√2 + 0.08
    obs_size: int = eqx.field(static=True, default=29)
    action_size: int = eqx.field(static=True, default=8)

    def __check_init__(self):
        low, high = self.healthy_z
        if not low < high:
            raise ValueError(
                f"healthy_z must be (low, high) with low < high, got {self.healthy_z}."
            )
        for name in ("gear", "timestep"):
            _check_positive(name, getattr(self, name))
        check_int("n_substeps", self.n_substeps, minimum=1)
        if not (math.isfinite(self.reset_noise) and self.reset_noise >= 0):
            raise ValueError(f"reset_noise must be a finite number >= 0, got {self.reset_noise}.")

    def mjcf(self) -> AgentMJCF:
        default = """
    <default class="ant">
      <joint armature="1" damping="1" limited="true"/>
      <geom contype="0" conaffinity="0" condim="3" density="5.0" friction="1 0.5 0.5"
            rgba="0.8 0.6 0.4 1"/>
    </default>"""
        legs = "".join(_ant_leg(i, *leg) for i, leg in enumerate(_LEGS, start=1))
        body = f"""
    <body name="torso" pos="0 0 0.75" childclass="ant">
      <joint name="root" type="free" armature="0" damping="0" limited="false"/>
      <geom name="torso" type="sphere" size="0.25" conaffinity="1"/>{legs}
    </body>"""
        actuators = "".join(
            f'\n    <motor joint="{joint}_{leg + 1}" gear="{self.gear}" ctrllimited="true" '
            'ctrlrange="-1 1"/>'
            for leg in _ACTUATOR_LEGS
            for joint in ("hip", "ankle")
        )
        return AgentMJCF(
            option=f'timestep="{self.timestep}"',
            flags='eulerdamp="disable"',
            default=default,
            body=body,
            actuators=actuators,
        )

    def reset_state(self, xy: Float[Array, "2"], key: PRNGKeyArray) -> QposQvel:
        qpos_key, qvel_key = jr.split(key)
        qpos0, _ = self.canonical_state(xy)
        qpos = qpos0 + _uniform(qpos_key, qpos0.shape, self.reset_noise)
        quat = qpos[3:7] / jnp.linalg.norm(qpos[3:7])
        qpos = qpos.at[:2].set(xy).at[3:7].set(quat)
        qvel = self.reset_noise * jr.normal(qvel_key, (14,))
        return qpos, qvel

    def canonical_state(self, xy: Float[Array, "2"]) -> QposQvel:
        qpos = jnp.asarray(_ANT_QPOS0, dtype=jnp.float32).at[:2].set(xy)
        return qpos, jnp.zeros(14, dtype=jnp.float32)

    def act(self, data: mjx.Data, action: Float[Array, " action"]) -> mjx.Data:
        return data.replace(ctrl=action)

    def terminated(self, data: mjx.Data) -> Bool[Array, ""]:
        z = data.qpos[2]
        low, high = self.healthy_z
        return (z < low) | (z > high)


def _ant_leg(
    i: int,
    name: str,
    direction: tuple[int, int],
    ankle_axis: tuple[int, int],
    ankle_range: tuple[int, int],
) -> str:
    """One leg: a fixed segment from the torso, a hip (vertical axis), a thigh, an ankle (axis
    perpendicular to the leg in the xy plane), a shin and a foot sphere."""
    dx, dy = direction
    ax, ay = ankle_axis
    low, high = ankle_range
    seg = f"{0.2 * dx} {0.2 * dy} 0"
    shin = f"{0.4 * dx} {0.4 * dy} 0"
    return f"""
      <body name="{name}_leg">
        <geom name="aux_{i}" type="capsule" fromto="0 0 0 {seg}" size="0.08"/>
        <body name="{name}_thigh" pos="{seg}">
          <joint name="hip_{i}" type="hinge" axis="0 0 1" range="-30 30"/>
          <geom name="thigh_{i}" type="capsule" fromto="0 0 0 {seg}" size="0.08"/>
          <body name="{name}_shin" pos="{seg}">
            <joint name="ankle_{i}" type="hinge" axis="{ax} {ay} 0" range="{low} {high}"/>
            <geom name="shin_{i}" type="capsule" fromto="0 0 0 {shin}" size="0.08"/>
            <geom name="foot_{i}" type="sphere" pos="{shin}" size="0.08" mass="0" conaffinity="3"/>
          </body>
        </body>
      </body>"""


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...], scale: float) -> Float[Array, "..."]:
    return jr.uniform(key, shape, minval=-scale, maxval=scale)


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value}.")
