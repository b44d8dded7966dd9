import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._custom_types import Activation
from ._energy import EnergyName, energy_fn
from ._residual import ResidualMLP, check_sizes


class ContrastiveCritic(eqx.Module):
    """The contrastive critic `f(s, a, g) = energy(φ(s, a), ψ(g))`.

    Two [`ResidualMLP`][deepcrl.nn.ResidualMLP] encoders: `sa_encoder` embeds the
    concatenated state and action, `goal_encoder` the goal, both into `repr_dim`
    dimensions. [`logits`][deepcrl.nn.ContrastiveCritic.logits] gives the `B × B` matrix
    `ℓ_ij = f(s_i, a_i, g_j)` that InfoNCE classifies.
    """

    sa_encoder: ResidualMLP
    goal_encoder: ResidualMLP
    energy: EnergyName = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        goal_size: int,
        *,
        repr_dim: int = 64,
        width: int = 256,
        depth: int = 4,
        energy: EnergyName = "l2",
        activation: Activation = jax.nn.swish,
        layer_norm: bool = True,
        remat: bool = False,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `obs_size`, `action_size`, `goal_size`: input sizes.
        - `repr_dim`: size of the embeddings φ and ψ.
        - `width`, `depth`, `activation`, `layer_norm`, `remat`: as in
          [`ResidualMLP`][deepcrl.nn.ResidualMLP], for both encoders.
        - `energy`: `"l2"` (default), `"sq_l2"`, `"dot"` or `"cosine"`.
        - `key`: PRNG key for the initialisation.
        """
        energy_fn(energy)  # fail early on an unknown name
        obs_size, action_size, goal_size, repr_dim = check_sizes(
            obs_size=obs_size, action_size=action_size, goal_size=goal_size, repr_dim=repr_dim
        )
        sa_key, goal_key = jr.split(key)

        def encoder(in_size: int, key: PRNGKeyArray) -> ResidualMLP:
            return ResidualMLP(
                in_size,
                repr_dim,
                width=width,
                depth=depth,
                activation=activation,
                layer_norm=layer_norm,
                remat=remat,
                key=key,
            )

        self.sa_encoder = encoder(obs_size + action_size, sa_key)
        self.goal_encoder = encoder(goal_size, goal_key)
        self.energy = energy

    def embed_sa(
        self, obs: Float[Array, "batch obs"], action: Float[Array, "batch action"]
    ) -> Float[Array, "batch repr"]:
        """φ(s, a) for a batch."""
        return jax.vmap(self.sa_encoder)(jnp.concatenate([obs, action], axis=-1))

    def embed_goal(self, goal: Float[Array, "batch goal"]) -> Float[Array, "batch repr"]:
        """ψ(g) for a batch."""
        return jax.vmap(self.goal_encoder)(goal)

    def logits(
        self,
        obs: Float[Array, "b obs"],
        action: Float[Array, "b action"],
        goal: Float[Array, "c goal"],
    ) -> Float[Array, "b c"]:
        """All pairs: `ℓ_ij = f(s_i, a_i, g_j)`; positives on the diagonal when `b = c`."""
        return energy_fn(self.energy)(self.embed_sa(obs, action), self.embed_goal(goal))

    def __call__(
        self,
        obs: Float[Array, "batch obs"],
        action: Float[Array, "batch action"],
        goal: Float[Array, "batch goal"],
    ) -> Float[Array, " batch"]:
        """Matched pairs only: `f(s_i, a_i, g_i)` (the diagonal, without the `B × B` matrix)."""
        phi, psi = self.embed_sa(obs, action), self.embed_goal(goal)
        return jax.vmap(lambda p, q: energy_fn(self.energy)(p[None], q[None])[0, 0])(phi, psi)
