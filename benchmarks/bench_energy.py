"""The critic energy's derivative: the gradient of an InfoNCE loss through the default energy
`neg_l2`, whose derivative is written as matmuls, against the same energy differentiated
through its explicit differences (what autodiff did before), at the CPU batch sizes.

`python -m benchmarks energy`; `DEEPCRL_BENCH_QUICK=1` for batches 64 and 256.

Both versions are timed interleaved (each round times every case once), so a shared
machine's load falls on all of them alike.
"""

import os
import statistics
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import jax.random as jr

from benchmarks._table import save_table
from benchmarks._timing import interleaved
from deepcrl.losses import infonce
from deepcrl.nn import neg_l2
from deepcrl.nn._energy import EPS, _sq_dist

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
BATCHES = (64, 256) if QUICK else (256, 1024)
REPR_DIM = 64  # the CRL preset's representation size
ROUNDS = 3 if QUICK else 7


def explicit_neg_l2(phi: jax.Array, psi: jax.Array) -> jax.Array:
    """`neg_l2` with autodiff through its explicit differences (the squared distance without
    its hand-written derivative): the backward pass stores the `b × c × dim` differences."""
    return -jnp.sqrt(_sq_dist.fun(phi, psi) + EPS)


def loss_grad(energy: Callable[[jax.Array, jax.Array], jax.Array]):
    """The compiled gradient of the InfoNCE loss over `energy(φ, ψ)` in φ and ψ."""
    return jax.jit(jax.grad(lambda phi, psi: infonce(energy(phi, psi)), argnums=(0, 1)))


def main() -> None:
    load = os.getloadavg()
    versions = {
        "matmuls (neg_l2)": loss_grad(neg_l2),
        "explicit differences": loss_grad(explicit_neg_l2),
    }
    calls = {}
    for batch in BATCHES:
        phi = jr.normal(jr.key(0), (batch, REPR_DIM))
        psi = phi + 0.1 * jr.normal(jr.key(1), (batch, REPR_DIM))  # positives near φ
        for name, grad in versions.items():
            calls[(batch, name)] = partial(grad, phi, psi)
            jax.block_until_ready(calls[(batch, name)]())  # compile and warm up
    times = interleaved(calls, ROUNDS)
    ms = {case: 1e3 * statistics.median(t.wall) for case, t in times.items()}
    rows = []
    for batch, name in calls:
        rows.append(
            {
                "batch": batch,
                "derivative": name,
                "gradient (ms)": ms[(batch, name)],
                "/ matmuls": ms[(batch, name)] / ms[(batch, "matmuls (neg_l2)")],
                "stored differences (MiB)": batch * batch * REPR_DIM * 4 / 2**20
                if name == "explicit differences"
                else 0.0,
            }
        )
    notes = (
        f"Gradient of the InfoNCE loss over the pairwise energy of φ, ψ ∈ R^(batch × "
        f"{REPR_DIM}) in both, one seed; medians of {ROUNDS} interleaved rounds. The "
        "stored differences are the float32 `batch × batch × dim` tensor that the explicit "
        f"version's backward pass keeps. 1-minute load average {load[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores."
    )
    save_table(
        "energy",
        "The critic energy's derivative: matmuls against explicit differences",
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
