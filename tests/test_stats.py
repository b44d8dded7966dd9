"""The seed statistics the experiments report: bootstrap intervals of a mean and of a
difference of means."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from deepcrl.train._cli import bootstrap_difference, bootstrap_interval

seeds = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=12)


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_the_interval_of_a_mean_holds_the_mean_within_the_values(values):
    low, high = bootstrap_interval(values)
    mean = float(np.mean(values))
    assert min(values) - 1e-12 <= low <= mean + 1e-12 <= high + 2e-12 <= max(values) + 3e-12


@settings(max_examples=40, deadline=None)
@given(seeds, seeds)
def test_the_difference_is_antisymmetric_and_its_interval_holds_it(a, b):
    diff, low, high = bootstrap_difference(a, b)
    assert diff == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)
    assert low <= diff + 1e-9 and diff - 1e-9 <= high
    assert -1.0 - 1e-12 <= low <= high <= 1.0 + 1e-12
    back, _, _ = bootstrap_difference(b, a, seed=1)
    assert back == pytest.approx(-diff, abs=1e-12)


def test_the_difference_separates_runs_apart_and_not_runs_alike():
    rng = np.random.default_rng(0)
    low_run, high_run = rng.uniform(0.6, 0.8, 10), rng.uniform(0.9, 1.0, 10)
    _, low, high = bootstrap_difference(high_run, low_run)
    assert 0 < low < high
    _, low, high = bootstrap_difference(low_run, rng.permutation(low_run))
    assert low < 0 < high


@pytest.mark.parametrize("bad", [[0.5], [[0.5, 0.6], [0.7, 0.8]], []])
def test_the_difference_needs_two_seeds_a_run(bad):
    with pytest.raises(ValueError, match="one value per seed"):
        bootstrap_difference(bad, [0.1, 0.2])


@pytest.mark.parametrize("level, z", [(0.95, 1.960), (0.80, 1.2816)])
def test_the_interval_has_the_normal_width_of_its_level_for_many_values(level, z):
    # For n values the bootstrap distribution of the mean is close to normal with the
    # standard error σ/√n (σ the values' own, ddof 0): its central `level` interval is
    # mean ± z·σ/√n. A range that merely holds the mean, or the min and max, fails this.
    values = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    low, high = bootstrap_interval(values, level=level)
    half = z * values.std() / np.sqrt(values.size)
    assert low < values.mean() < high
    np.testing.assert_allclose(
        [low, high], [values.mean() - half, values.mean() + half], atol=0.1 * half
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(level=95.0), r"level must be a probability in \(0, 1\), got 95.0"),
        (dict(level=0.0), "level must be a probability"),
        (dict(resamples=0), "resamples must be an integer >= 1, got 0"),
    ],
)
@pytest.mark.parametrize("statistic", ["interval", "difference"])
def test_bad_bootstrap_settings_are_named(kwargs, match, statistic):
    with pytest.raises(ValueError, match=match):
        if statistic == "interval":
            bootstrap_interval([0.1, 0.5, 0.9], **kwargs)
        else:
            bootstrap_difference([0.1, 0.5, 0.9], [0.2, 0.4], **kwargs)
