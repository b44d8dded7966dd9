import os
import random
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
