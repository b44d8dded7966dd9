import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax.ad_checkpoint import checkpoint_name
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import is_integer
from .._custom_types import Activation, Initializer

LAYERS_PER_BLOCK = 4
DENSE_OUTPUT = "deepcrl.nn.dense_output"
"""`checkpoint_name` of each block Linear's output: what the scanned backward pass keeps."""


def default_init() -> Initializer:
    """Uniform weights in ±1/√fan_in (variance scaling 1/3, fan-in, uniform), as the reference."""
    # Equinox stores weights as (out, in): fan-in is the last axis.
    return jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=-1, out_axis=-2)


def _linear(in_size: int, out_size: int, init: Initializer, key: PRNGKeyArray) -> eqx.nn.Linear:
    """A Linear layer with weights from `init` and zero biases."""
    linear = eqx.nn.Linear(in_size, out_size, key=key)
    weight = init(key, (out_size, in_size), jnp.float32)
    assert linear.bias is not None
    return eqx.tree_at(lambda m: (m.weight, m.bias), linear, (weight, jnp.zeros_like(linear.bias)))


def _norm(width: int, layer_norm: bool) -> eqx.nn.LayerNorm | eqx.nn.Identity:
    return eqx.nn.LayerNorm(width, eps=1e-6) if layer_norm else eqx.nn.Identity()


class ResidualBlock(eqx.Module):
    """Four `Linear → LayerNorm → activation` layers with an identity skip around them.

    The skip is added after the fourth activation; there is no norm after the add and no
    projection on the skip (the width is unchanged).
    """

    linears: tuple[eqx.nn.Linear, ...]
    norms: tuple[eqx.nn.LayerNorm | eqx.nn.Identity, ...]
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        width: int,
        *,
        activation: Activation = jax.nn.swish,
        layer_norm: bool = True,
        init: Initializer | None = None,
        key: PRNGKeyArray,
    ):
        (width,) = check_sizes(width=width)
        init = default_init() if init is None else init
        keys = jr.split(key, LAYERS_PER_BLOCK)
        self.linears = tuple(_linear(width, width, init, k) for k in keys)
        self.norms = tuple(_norm(width, layer_norm) for _ in keys)
        self.activation = activation

    def __call__(self, x: Float[Array, " width"]) -> Float[Array, " width"]:
        h = x
        for linear, norm in zip(self.linears, self.norms, strict=True):
            h = self.activation(norm(checkpoint_name(linear(h), DENSE_OUTPUT)))
        return x + h


class AbstractResidualMLP(eqx.Module):
    """A stem, a stack of [`ResidualBlock`][deepcrl.nn.ResidualBlock]s and a linear head.

    Subclasses decide how the blocks are stored and run: scanned
    ([`ResidualMLP`][deepcrl.nn.ResidualMLP]) or as a Python loop
    ([`UnrolledResidualMLP`][deepcrl.nn.UnrolledResidualMLP]).
    """

    stem: eqx.AbstractVar[eqx.nn.Linear]
    stem_norm: eqx.AbstractVar[eqx.nn.LayerNorm | eqx.nn.Identity]
    head: eqx.AbstractVar[eqx.nn.Linear]
    in_size: eqx.AbstractVar[int]
    out_size: eqx.AbstractVar[int]
    width: eqx.AbstractVar[int]
    depth: eqx.AbstractVar[int]
    activation: eqx.AbstractVar[Activation]

    def _run_blocks(self, x: Float[Array, " width"]) -> Float[Array, " width"]:
        raise NotImplementedError

    def features(self, x: Float[Array, " in_size"]) -> Float[Array, " width"]:
        """The residual stream after the last block (the input of the head)."""
        if x.shape != (self.in_size,):
            raise ValueError(
                f"Expected an input of shape ({self.in_size},), got {x.shape}; "
                "use jax.vmap for batches."
            )
        return self._run_blocks(self.activation(self.stem_norm(self.stem(x))))

    def __call__(
        self, x: Float[Array, " in_size"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " out_size"]:
        """**Arguments:**

        - `x`: one input vector (use `jax.vmap` for a batch).
        - `key`: unused; accepted for a uniform Equinox interface.

        **Returns:** the output vector.
        """
        del key
        return self.head(self.features(x))


class ResidualMLP(AbstractResidualMLP):
    """The residual MLP of deep contrastive RL, with its blocks scanned.

    `Linear → LayerNorm → activation` (stem), then `depth // 4` residual blocks of
    4 × (`Linear → LayerNorm → activation`) with an identity skip, then a `Linear` head.
    Depth counts the Linear layers inside blocks, so depth 4 is one block.

    The blocks' parameters are stacked on a leading axis of size `depth // 4` and applied
    with `jax.lax.scan`: the traced program, and so the compile time, does not grow with
    depth. [`unrolled`][deepcrl.nn.ResidualMLP.unrolled] gives the same function as a
    Python loop over blocks.
    """

    stem: eqx.nn.Linear
    stem_norm: eqx.nn.LayerNorm | eqx.nn.Identity
    blocks: ResidualBlock
    head: eqx.nn.Linear
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    remat: bool = eqx.field(static=True)
    scan_unroll: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        width: int = 256,
        depth: int = 4,
        activation: Activation = jax.nn.swish,
        layer_norm: bool = True,
        remat: bool = False,
        scan_unroll: int = 1,
        init: Initializer | None = None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_size`, `out_size`: input and output sizes.
        - `width`: hidden width of the stem and every block.
        - `depth`: number of Linear layers inside residual blocks; a positive multiple of 4.
        - `activation`: elementwise activation (swish by default; the depth results need it).
        - `layer_norm`: `False` removes every LayerNorm (an ablation: deep stacks then diverge).
        - `remat`: recompute each block's activations in the backward pass
          (`jax.checkpoint`), trading about one extra forward pass for memory: only each
          block's input is kept. Without it, the backward pass keeps the four Linear
          outputs of every block and recomputes the cheap LayerNorms and activations.
        - `scan_unroll`: blocks per scan iteration (`jax.lax.scan`'s `unroll`).
        - `init`: weight initializer, `init(key, (out, in), dtype)`; biases start at zero.
          Defaults to uniform ±1/√fan_in.
        - `key`: PRNG key for the initialisation.
        """
        in_size, out_size, width, scan_unroll = check_sizes(
            in_size=in_size, out_size=out_size, width=width, scan_unroll=scan_unroll
        )
        depth = _check_depth(depth)
        init = default_init() if init is None else init
        stem_key, blocks_key, head_key = jr.split(key, 3)
        self.stem = _linear(in_size, width, init, stem_key)
        self.stem_norm = _norm(width, layer_norm)

        def make_block(k: PRNGKeyArray) -> ResidualBlock:
            return ResidualBlock(
                width, activation=activation, layer_norm=layer_norm, init=init, key=k
            )

        self.blocks = eqx.filter_vmap(make_block)(jr.split(blocks_key, depth // LAYERS_PER_BLOCK))
        self.head = _linear(width, out_size, init, head_key)
        self.in_size = in_size
        self.out_size = out_size
        self.width = width
        self.depth = depth
        self.activation = activation
        self.remat = remat
        self.scan_unroll = scan_unroll

    @property
    def num_blocks(self) -> int:
        return self.depth // LAYERS_PER_BLOCK

    def _run_blocks(self, x: Float[Array, " width"]) -> Float[Array, " width"]:
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def body(h: Array, block_params: ResidualBlock) -> tuple[Array, None]:
            return eqx.combine(block_params, static)(h), None

        # Reverse mode through a scan stores every residual the body's backward pass reads,
        # one slice per block, and XLA cannot fuse across the loop to drop any (it can in an
        # unrolled program). Keeping only the Linear outputs and recomputing LayerNorm and
        # activation from them (cheap, elementwise) uses less memory and time than both.
        # `prevent_cse=False` is safe in a scan body, where CSE cannot undo the recomputation.
        keep_dense = jax.checkpoint_policies.save_only_these_names(DENSE_OUTPUT)
        body = jax.checkpoint(body, policy=None if self.remat else keep_dense, prevent_cse=False)
        out, _ = jax.lax.scan(body, x, params, unroll=self.scan_unroll)
        return out

    def unrolled(self) -> "UnrolledResidualMLP":
        """The same network with its blocks as a tuple run by a Python loop (same parameters)."""
        params, static = eqx.partition(self.blocks, eqx.is_array)
        blocks = tuple(
            eqx.combine(jax.tree.map(lambda p, i=i: p[i], params), static)
            for i in range(self.num_blocks)
        )
        return UnrolledResidualMLP(
            stem=self.stem,
            stem_norm=self.stem_norm,
            blocks=blocks,
            head=self.head,
            activation=self.activation,
        )


class UnrolledResidualMLP(AbstractResidualMLP):
    """A [`ResidualMLP`][deepcrl.nn.ResidualMLP] whose blocks are a tuple run by a Python loop.

    Its trace grows linearly with depth, like the reference implementations; it exists to
    check the scanned network and to measure what scanning saves. Build it with
    [`ResidualMLP.unrolled`][deepcrl.nn.ResidualMLP.unrolled].
    """

    stem: eqx.nn.Linear
    stem_norm: eqx.nn.LayerNorm | eqx.nn.Identity
    blocks: tuple[ResidualBlock, ...]
    head: eqx.nn.Linear
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        *,
        stem: eqx.nn.Linear,
        stem_norm: eqx.nn.LayerNorm | eqx.nn.Identity,
        blocks: tuple[ResidualBlock, ...],
        head: eqx.nn.Linear,
        activation: Activation,
    ):
        self.stem = stem
        self.stem_norm = stem_norm
        self.blocks = blocks
        self.head = head
        self.in_size = stem.in_features  # pyright: ignore[reportAttributeAccessIssue]
        self.out_size = head.out_features  # pyright: ignore[reportAttributeAccessIssue]
        self.width = stem.out_features  # pyright: ignore[reportAttributeAccessIssue]
        self.depth = LAYERS_PER_BLOCK * len(blocks)
        self.activation = activation

    def __check_init__(self):
        if not self.blocks:
            raise ValueError("An UnrolledResidualMLP needs at least one block.")

    def _run_blocks(self, x: Float[Array, " width"]) -> Float[Array, " width"]:
        for block in self.blocks:
            x = block(x)
        return x


def check_sizes(**sizes: int) -> tuple[int, ...]:
    """The sizes as plain ints, in the order given; a `ValueError` naming the first that is
    not an integer >= 1. NumPy integers pass and become ints (they fail inside Equinox's
    LayerNorm); floats and bools, which would fail deep inside Equinox or JAX, do not."""
    for name, value in sizes.items():
        if not (is_integer(value) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return tuple(operator.index(value) for value in sizes.values())


def _check_depth(depth: int) -> int:
    if not is_integer(depth) or depth < LAYERS_PER_BLOCK or depth % LAYERS_PER_BLOCK:
        raise ValueError(
            f"depth must be a positive multiple of {LAYERS_PER_BLOCK} (Linear layers per "
            f"residual block), got {depth}."
        )
    return operator.index(depth)
