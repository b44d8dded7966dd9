from collections.abc import Callable

from jaxtyping import Array, PRNGKeyArray

Activation = Callable[[Array], Array]
"""An elementwise activation function, e.g. `jax.nn.swish`."""

Initializer = Callable[..., Array]
"""A `jax.nn.initializers` initializer: `init(key, shape, dtype) -> Array`."""

__all__ = ["Activation", "Array", "Initializer", "PRNGKeyArray"]
