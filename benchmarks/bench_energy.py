"""The critic energy's derivative: the gradient of an InfoNCE loss through the default energy
`neg_l2`, whose derivative is written as matmuls, against the same energy differentiated
through its explicit differences (what autodiff did before), at the CPU batch sizes.

`python -m benchmarks energy`; `DEEPCRL_BENCH_QUICK=1` for batches 64 and 256.

Both versions are timed interleaved (each round times every case once), so a shared
machine's load falls on all of them alike.
"""

import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.random as jr

from benchmarks._table import save_table
from deepcrl.losses import infonce
from deepcrl.nn import neg_l2
from deepcrl.nn._energy import EPS

QUICK = bool(os.environ.get("DEEPCRL_BENCH_QUICK"))
BATCHES = (64, 256) if QUICK else (256, 1024)
REPR_DIM = 64  # the CRL preset's representation size
ROUNDS = 3 if QUICK else 7


def explicit_neg_l2(phi: jax.Array, psi: jax.Array) -> jax.Array:
    """`neg_l2` with autodiff through the differences: its backward pass stores the
    `b × c × dim` tensor of differences."""
    diff = phi[:, None, :] - psi[None, :, :]
    return -jnp.sqrt(jnp.sum(jnp.square(diff), axis=-1) + EPS)


def loss_grad(energy: Callable[[jax.Array, jax.Array], jax.Array]):
    """The compiled gradient of the InfoNCE loss over `energy(φ, ψ)` in φ and ψ."""
    return jax.jit(jax.grad(lambda phi, psi: infonce(energy(phi, psi)), argnums=(0, 1)))


def main() -> None:
    load = os.getloadavg()
    versions = {
        "matmuls (neg_l2)": loss_grad(neg_l2),
        "explicit differences": loss_grad(explicit_neg_l2),
    }
    cases = {}
    for batch in BATCHES:
        phi = jr.normal(jr.key(0), (batch, REPR_DIM))
        psi = phi + 0.1 * jr.normal(jr.key(1), (batch, REPR_DIM))  # positives near φ
        for name, grad in versions.items():
            jax.block_until_ready(grad(phi, psi))  # compile and warm up
            cases[(batch, name)] = (grad, phi, psi, [])
    for _ in range(ROUNDS):
        for grad, phi, psi, times in cases.values():
            start = time.perf_counter()
            jax.block_until_ready(grad(phi, psi))
            times.append(time.perf_counter() - start)
    rows = []
    for (batch, name), (_, _, _, times) in cases.items():
        ms = 1e3 * statistics.median(times)
        base = 1e3 * statistics.median(cases[(batch, "matmuls (neg_l2)")][3])
        rows.append(
            {
                "batch": batch,
                "derivative": name,
                "gradient (ms)": ms,
                "/ matmuls": ms / base,
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
