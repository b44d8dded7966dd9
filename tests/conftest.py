import os
import random
import subprocess
import sys
from pathlib import Path

import hypothesis
import jax
import jax.random as jr
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
# A compilation cache shared by the test workers and by tests that build equal programs (a
# fresh `jax.jit` of the same function compiles again; the cache makes that a disk read).
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("DEEPCRL_TEST_CACHE", str(Path(__file__).parents[1] / ".pytest_cache" / "jax")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
# Each test runs its small programs a few times: compiling them with few optimisations (no
# LLVM optimisation passes) costs less than the slower code it makes.
jax.config.update("jax_disable_most_optimizations", True)

# XLA's older CPU code generator compiles the tests' programs 20-40% faster (each runs only a
# few times). Set for the workers before any backend starts, and only where this XLA knows the
# flag: an unknown flag in XLA_FLAGS aborts the process.
_FAST_COMPILE = "--xla_cpu_use_fusion_emitters=false"


def pytest_configure(config):
    flags = os.environ.get("XLA_FLAGS", "")
    if _FAST_COMPILE in flags or "DEEPCRL_TEST_XLA_PROBED" in os.environ:
        return  # a worker: the controller decided
    os.environ["DEEPCRL_TEST_XLA_PROBED"] = "1"
    trial = f"{flags} {_FAST_COMPILE}".strip()
    probe = subprocess.run(
        [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"],
        env={**os.environ, "XLA_FLAGS": trial, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
    )
    if probe.returncode == 0:
        os.environ["XLA_FLAGS"] = trial


# Derandomised under CI so a red run reproduces; locally hypothesis explores.
hypothesis.settings.register_profile("dev", deadline=None, max_examples=40)
hypothesis.settings.register_profile(
    "ci", parent=hypothesis.settings.get_profile("ci"), deadline=None, max_examples=40
)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def getkey():
    """A function returning a fresh PRNG key at each call (seeded per test for reproducibility)."""
    seed = random.Random(0).randint(0, 2**31 - 1)
    key = jr.key(seed)

    def _getkey():
        nonlocal key
        key, sub = jr.split(key)
        return sub

    return _getkey


# Files by the compile time they need, longest first. The workers (`--dist loadfile`) take
# whole files in this order, so the longest file starts at once instead of last and both
# workers finish at about the same time.
_LONGEST_FIRST = (
    "test_train.py",
    "test_nn.py",
    "test_envs_maze.py",
    "test_losses.py",
    "test_td.py",
    "test_crl.py",
    "test_infonce.py",
    "test_replay.py",
    "test_envs_ant.py",
    "test_actor_critic.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


@pytest.fixture
def examples(monkeypatch):
    """Imports the example scripts as their own directory does when run (`import train_crl`)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples"))

    def load(name):
        monkeypatch.delitem(sys.modules, name, raising=False)
        return __import__(name)

    return load


@pytest.fixture
def keep_cache_config():
    """Restores the compilation cache settings that the command line changes."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.fixture
def without_type_checks():
    """Runs a test as users run the package: without the suite's runtime type checking
    (which refuses, say, a NumPy integer for an `int` before the package's own checks)."""
    import jaxtyping

    saved = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", saved)
