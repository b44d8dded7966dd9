import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._custom_types import Activation
from ._residual import ResidualMLP, check_sizes


class QEnsemble(eqx.Module):
    """`num_critics` independent goal-conditioned critics `Q_k(s, a, g)`, each a
    [`ResidualMLP`][deepcrl.nn.ResidualMLP] on `concat(obs, action, goal)` with
    `num_outputs` outputs (1 for regression, the bins of a histogram loss).

    The critics' parameters are stacked on a leading axis and evaluated with one `vmap`,
    so twin critics cost one batched network, not two.
    """

    nets: ResidualMLP
    num_critics: int = eqx.field(static=True)
    num_outputs: int = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        goal_size: int,
        num_outputs: int,
        *,
        num_critics: int = 2,
        width: int = 256,
        depth: int = 4,
        activation: Activation = jax.nn.swish,
        layer_norm: bool = True,
        remat: bool = False,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `obs_size`, `action_size`, `goal_size`: input sizes.
        - `num_outputs`: outputs per critic and input (e.g. `loss.num_outputs`).
        - `num_critics`: ensemble size (2: the twin critics of SAC/TD3).
        - `width`, `depth`, `activation`, `layer_norm`, `remat`: as in
          [`ResidualMLP`][deepcrl.nn.ResidualMLP].
        - `key`: PRNG key for the initialisation.
        """
        obs_size, action_size, goal_size, num_outputs, num_critics = check_sizes(
            obs_size=obs_size,
            action_size=action_size,
            goal_size=goal_size,
            num_outputs=num_outputs,
            num_critics=num_critics,
        )

        def make(k: PRNGKeyArray) -> ResidualMLP:
            return ResidualMLP(
                obs_size + action_size + goal_size,
                num_outputs,
                width=width,
                depth=depth,
                activation=activation,
                layer_norm=layer_norm,
                remat=remat,
                key=k,
            )

        self.nets = eqx.filter_vmap(make)(jr.split(key, num_critics))
        self.num_critics = num_critics
        self.num_outputs = num_outputs

    def __call__(
        self,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, "critics batch outputs"]:
        """Every critic's outputs for every row."""
        x = jnp.concatenate([obs, action, goal], axis=-1)

        @eqx.filter_vmap
        def one(net: ResidualMLP) -> Array:
            return jax.vmap(net)(x)

        return one(self.nets)
