import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Shaped


def upcast(x: Shaped[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """`x` in at least float32: loss math stays in float32 when the networks run in bfloat16.

    Integer and boolean inputs become float32 (`jnp.finfo` would reject them); complex ones
    raise a `ValueError`.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return x.astype(jnp.float32)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"Expected real numbers, got an array of dtype {x.dtype}.")
    if jnp.finfo(x.dtype).bits < 32:
        return x.astype(jnp.float32)
    return x
