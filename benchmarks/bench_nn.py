"""ResidualMLP over depth: compile time, step time and memory, scanned against unrolled.

The measured program is one training step's worth of network work: `value_and_grad` of a
scalar loss through a `ResidualMLP` 64 → 64 (width 256) on a batch of 256 inputs. The model is
an argument of the jitted function, never closed over (closed-over arrays become constants
baked into the program, which slows compilation and is not how training code calls it).

Run with `python -m benchmarks nn`; `DEEPCRL_BENCH_QUICK=1` makes a smoke run of seconds.
The same script runs unchanged on CPU and GPU; tables land in `benchmarks/results/nn-*`.
"""

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float

from deepcrl.nn import ResidualMLP

from ._table import save_table
from ._timing import Timing, interleaved

QUICK = os.environ.get("DEEPCRL_BENCH_QUICK", "0") not in ("", "0")
DEPTHS = (4, 8) if QUICK else (4, 16, 64, 256, 1024)
UNROLLED_MAX_DEPTH = 8 if QUICK else 256
"""Deeper unrolled programs are not compiled: their compile time grows linearly with depth
(about 30 s at depth 256 on two CPU cores, so several minutes at 1024)."""
VARIANTS_DEPTH = 8 if QUICK else 64
SCAN_UNROLLS = (1,) if QUICK else (1, 2, 4)
IN_SIZE = OUT_SIZE = 64
WIDTH = 256
BATCH = 256
STEP_BUDGET_S = 0.5 if QUICK else 8.0
"""Wall time spent on timed steps per depth, shared by that depth's variants."""
MIN_REPS, MAX_REPS = (2, 3) if QUICK else (3, 15)
COMPILE_REPS = 1 if QUICK else 2
"""Compilations per variant of the depth sweep (the fastest counts); a variant slower than
`SLOW_COMPILE_S` is compiled once, and so is every variant of the `scan_unroll` table."""
SLOW_COMPILE_S = 10.0
MIB = 2**20

Net = Callable[[Array], Array]
"""A network on one input vector (batched with `jax.vmap`)."""
Step = Callable[[Net, Array], Any]


@dataclass(frozen=True)
class CompiledStep:
    """A compiled `value_and_grad` step with what it cost to build."""

    step: Step
    lower_s: float
    compile_s: float
    peak_mib: float
    temp_mib: float


def _loss(model: Net, x: Float[Array, "batch in"]) -> Float[Array, ""]:
    return jnp.mean(jnp.square(jax.vmap(model)(x)))


def compile_step(model: Net, x: Float[Array, "batch in"]) -> CompiledStep:
    """Trace, lower and compile the step for `model`, timing each stage.

    A fresh function per call: JAX and Equinox cache traces and executables per function, so
    reusing one would time a cache hit.
    """

    def loss(model: Net, x: Float[Array, "batch in"]) -> Float[Array, ""]:
        return _loss(model, x)

    jitted = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    start = time.perf_counter()
    lowered = jitted.lower(model, x)  # pyright: ignore[reportFunctionMemberAccess]
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()
    memory = compiled.compiled.memory_analysis()
    assert memory is not None, "this backend reports no memory analysis"
    peak = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    return CompiledStep(
        step=compiled,
        lower_s=lowered_at - start,
        compile_s=compiled_at - lowered_at,
        peak_mib=peak / MIB,
        temp_mib=memory.temp_size_in_bytes / MIB,
    )


def best_compile(model: Net, x: Float[Array, "batch in"], reps: int) -> CompiledStep:
    """The fastest of up to `reps` compilations (compile times are noisy)."""
    best = compile_step(model, x)
    for _ in range(reps - 1):
        if best.lower_s + best.compile_s > SLOW_COMPILE_S:
            break
        again = compile_step(model, x)
        if again.lower_s + again.compile_s < best.lower_s + best.compile_s:
            best = again
    return best


def time_steps(runs: dict[str, tuple[Step, Net]], x: Float[Array, "batch in"]) -> dict[str, Timing]:
    """Step times per variant, interleaved so that load drift hits all variants alike."""
    first = {}
    for name, (step, model) in runs.items():  # warm-up, also sizes the repetitions
        start = time.perf_counter()
        jax.block_until_ready(step(model, x))
        first[name] = time.perf_counter() - start
    reps = int(STEP_BUDGET_S / max(sum(first.values()), 1e-9))
    reps = min(max(reps, MIN_REPS), MAX_REPS)
    calls = {name: partial(step, model, x) for name, (step, model) in runs.items()}
    return interleaved(calls, reps)


class OtherScan(eqx.Module):
    """A `ResidualMLP` run by a `lax.scan` whose body keeps other residuals than its own.

    `keep="all"`: a plain scan, which stores every residual the body's backward pass reads,
    one slice per block. `keep="dots"`: the `dots_saveable` checkpoint policy, which keeps
    the raw matmul outputs (before the bias, in the vmapped `(out, batch)` layout).
    `ResidualMLP` itself keeps the Linear outputs, named with `checkpoint_name`.
    """

    net: ResidualMLP
    keep: str = eqx.field(static=True)

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        net = self.net
        params, static = eqx.partition(net.blocks, eqx.is_array)

        def body(h: Array, block_params: Any) -> tuple[Array, None]:
            return eqx.combine(block_params, static)(h), None

        if self.keep == "dots":
            body = jax.checkpoint(body, policy=jax.checkpoint_policies.dots_saveable)
        h = net.activation(net.stem_norm(net.stem(x)))
        h, _ = jax.lax.scan(body, h, params)
        return net.head(h)


def _num_params(model: eqx.Module) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_array)))


def _make(depth: int, **kwargs: Any) -> ResidualMLP:
    return ResidualMLP(IN_SIZE, OUT_SIZE, width=WIDTH, depth=depth, key=jr.key(0), **kwargs)


def _on_cpu() -> bool:
    return jax.devices()[0].platform == "cpu"


def _row(name: str, built: CompiledStep, times: Timing, **extra: Any) -> dict[str, Any]:
    # On a shared CPU the process time is the steadier number: waiting for a core is not
    # counted. On an accelerator it only measures the host and is left out.
    cpu = {"CPU-time ms (min)": 1e3 * min(times.cpu)} if _on_cpu() else {}
    return {
        **extra,
        "variant": name,
        "trace+lower s": built.lower_s,
        "compile s": built.compile_s,
        "step ms (median)": 1e3 * statistics.median(times.wall),
        "step ms (min)": 1e3 * min(times.wall),
        **cpu,
        "runs": len(times.wall),
        "peak MiB": built.peak_mib,
        "temp MiB": built.temp_mib,
    }


def depth_sweep(x: Float[Array, "batch in"]) -> list[dict[str, Any]]:
    """Scanned (with and without remat) and unrolled networks at every depth."""
    rows = []
    for depth in DEPTHS:
        scanned = _make(depth)
        models: dict[str, Net] = {"scan": scanned, "scan + remat": _make(depth, remat=True)}
        if depth <= UNROLLED_MAX_DEPTH:
            models["unrolled"] = scanned.unrolled()
        built = {name: best_compile(model, x, COMPILE_REPS) for name, model in models.items()}
        times = time_steps({name: (built[name].step, models[name]) for name in models}, x)
        params = f"{_num_params(scanned) / 1e6:.2f}M"
        for name in models:
            rows.append(_row(name, built[name], times[name], depth=depth, params=params))
        print(f"depth {depth} done", flush=True)
    return rows


def variants_at_depth(x: Float[Array, "batch in"]) -> list[dict[str, Any]]:
    """At one depth: `scan_unroll` values, the plain-scan residuals, and the unrolled loop."""
    models: dict[str, Net] = {
        f"scan, scan_unroll={u}": _make(VARIANTS_DEPTH, scan_unroll=u) for u in SCAN_UNROLLS
    }
    models["plain scan (keeps all residuals)"] = OtherScan(_make(VARIANTS_DEPTH), "all")
    models["scan keeping dot outputs"] = OtherScan(_make(VARIANTS_DEPTH), "dots")
    models["unrolled"] = _make(VARIANTS_DEPTH).unrolled()
    built = {name: best_compile(model, x, 1) for name, model in models.items()}
    times = time_steps({name: (built[name].step, models[name]) for name in models}, x)
    unrolled = statistics.median(times["unrolled"].wall)
    return [
        {
            **_row(name, built[name], times[name]),
            "median vs unrolled": statistics.median(times[name].wall) / unrolled,
        }
        for name in models
    ]


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios behind the targets: compile time against depth 4, scan against unrolled."""
    at = {(row["depth"], row["variant"]): row for row in rows}

    def compile_s(row: dict[str, Any]) -> float:
        return row["trace+lower s"] + row["compile s"]

    def ratio(depth: int, num: str, den: str, column: str) -> float | str:
        if (depth, den) not in at:
            return "—"
        value = at[(depth, num)][column] if column != "compile" else compile_s(at[(depth, num)])
        base = at[(depth, den)][column] if column != "compile" else compile_s(at[(depth, den)])
        return value / base

    step_columns = ["step ms (median)", "step ms (min)"]
    step_columns += ["CPU-time ms (min)"] if _on_cpu() else []
    out = []
    for depth in DEPTHS:
        row: dict[str, Any] = {
            "depth": depth,
            f"scan compile / depth {DEPTHS[0]}": compile_s(at[(depth, "scan")])
            / compile_s(at[(DEPTHS[0], "scan")]),
            "scan / unrolled compile": ratio(depth, "scan", "unrolled", "compile"),
        }
        for column in step_columns:
            kind = column.removesuffix(" ms (median)").removesuffix(" ms (min)")
            stat = "median" if "median" in column else "min"
            row[f"scan / unrolled {kind} ({stat})"] = ratio(depth, "scan", "unrolled", column)
        row["remat / scan peak memory"] = ratio(depth, "scan + remat", "scan", "peak MiB")
        row["remat / scan temp memory"] = ratio(depth, "scan + remat", "scan", "temp MiB")
        row["remat / scan step (median)"] = ratio(depth, "scan + remat", "scan", step_columns[0])
        out.append(row)
    return out


def _noise_note(load_before: tuple[float, ...] | None) -> str:
    if not _on_cpu() or load_before is None:
        return ""
    after = os.getloadavg()
    return (
        f" The CPU is shared with other work and timings are noisy: 1-minute load average "
        f"{load_before[0]:.1f} before and {after[0]:.1f} after, on {os.cpu_count()} cores. "
        "Variants of one depth are timed interleaved, so they see the same load."
    )


def main() -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    x = jr.normal(jr.key(1), (BATCH, IN_SIZE))
    shape = f"ResidualMLP {IN_SIZE} → {OUT_SIZE}, width {WIDTH}, batch {BATCH}"
    quick = " (quick run)" if QUICK else ""

    def common(compile_reps: int) -> str:
        cpu = (
            " CPU-time: the process's CPU time over all threads (waiting for a core does not "
            "count), the steadier number on a shared machine."
            if _on_cpu()
            else ""
        )
        compiles = (
            f"fastest of {compile_reps} compilations (one when slower than {SLOW_COMPILE_S:.0f} s)"
            if compile_reps > 1
            else "one compilation each"
        )
        return (
            "Step: `eqx.filter_value_and_grad` of a mean-square loss, model passed as an "
            "argument. Compile times from `.lower(...)` and `.compile()`, "
            f"{compiles}. Step times: wall clock of `runs` steps after a "
            f"warm-up, each waited for with `block_until_ready`.{cpu} Peak memory from "
            "`compiled.memory_analysis()`: arguments + outputs + temporaries − aliased."
        )

    rows = depth_sweep(x)
    save_table(
        "nn-depth",
        f"{shape}: compile, step and memory over depth{quick}",
        rows,
        notes=common(COMPILE_REPS)
        + f" Unrolled only up to depth {UNROLLED_MAX_DEPTH}: its trace and compile time grow "
        "linearly with depth." + _noise_note(load),
    )
    save_table(
        "nn-summary",
        f"{shape}: ratios{quick}",
        summary(rows),
        notes="Targets: scanned compile at depth 1024 within 1.5× of depth 4; scanned step "
        "within 1.1× of unrolled at depth 64.",
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    save_table(
        "nn-variants",
        f"{shape}, depth {VARIANTS_DEPTH}: scan variants against the unrolled loop{quick}",
        variants_at_depth(x),
        notes=common(1)
        + " `ResidualMLP` (the `scan` rows) keeps only each Linear's output for the backward "
        "pass and recomputes LayerNorm and swish; the plain scan stores every residual of "
        "every block; `dots_saveable` keeps the raw matmul outputs, whose vmapped layout costs "
        "a transpose copy per layer." + _noise_note(load),
    )
