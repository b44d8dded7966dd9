import jax.numpy as jnp
from jaxtyping import Array, Float


def upcast(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """`x` in at least float32: loss math stays in float32 when the networks run in bfloat16."""
    x = jnp.asarray(x)
    if jnp.finfo(x.dtype).bits < 32:
        return x.astype(jnp.float32)
    return x
