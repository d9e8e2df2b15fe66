"""Adaptive rounding's solver against what can be worked out by hand or by brute force."""

from __future__ import annotations

import itertools

import numpy as np

from itemrec.convert.rounding import adaptive_grid, error_variance, nearest_grid


def random_problem(seed: int, weights=12, channels=5):
    """Inputs driven by 3 common factors plus a little noise, as neighbouring pixels are."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(weights, 3))
    covariance = mixing @ mixing.T + 0.05 * np.eye(weights)
    return rng.uniform(-20, 20, (weights, channels)), covariance


def test_correlated_inputs_round_in_opposite_directions():
    # Two identical inputs, both weights half a step plus a little above the grid: nearest
    # rounding adds +0.4 twice (error 0.8 x input); one up, one down cancels to 0.2.
    covariance = np.ones((2, 2))
    values = np.array([[3.6], [5.6]])
    assert nearest_grid(values).ravel().tolist() == [4.0, 6.0]
    grid = adaptive_grid(values, covariance)
    assert sorted((grid - values).ravel().round(6).tolist()) == [-0.6, 0.4]


def test_no_single_flip_lowers_the_error_and_it_beats_nearest():
    for seed in range(5):
        values, covariance = random_problem(seed)
        grid = adaptive_grid(values, covariance)
        assert np.all((grid == np.floor(values)) | (grid == np.ceil(values)))
        found = error_variance(grid - values, covariance)
        nearest = error_variance(nearest_grid(values) - values, covariance)
        assert np.all(found <= nearest + 1e-12)
        assert found.sum() < 0.6 * nearest.sum()  # measured: 0.09-0.29x
        for i, c in itertools.product(*map(range, values.shape)):
            other = grid.copy()
            other[i, c] += 1 if other[i, c] == np.floor(values[i, c]) else -1
            assert error_variance(other - values, covariance)[c] >= found[c] - 1e-12


def test_per_channel_covariances_give_the_shared_answer_when_equal():
    values, covariance = random_problem(3)
    per_channel = np.repeat(covariance[np.newaxis], values.shape[1], axis=0)
    assert np.array_equal(adaptive_grid(values, covariance), adaptive_grid(values, per_channel))


def test_weights_on_the_grid_stay_there():
    values, covariance = random_problem(5)
    values[::3] = np.round(values[::3])  # pruned zeros, the channel's largest weight
    values[1] = 0.0
    grid = adaptive_grid(values, covariance)
    assert np.array_equal(grid[::3], values[::3]) and not grid[1].any()
    assert not np.array_equal(grid, nearest_grid(values))  # the others still choose


def test_the_grid_stays_within_int8():
    values = np.array([[126.9, -126.9, 127.0, -127.0]])
    grid = adaptive_grid(values, np.ones((1, 1)))
    assert np.abs(grid).max() <= 127
