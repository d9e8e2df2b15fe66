"""The learning-rate schedule and the phase lengths derived from steps."""

import math

import numpy as np
import pytest

from itemrec.train.schedule import WarmupCosine, epochs_for_steps


def test_warmup_then_cosine_follows_the_formula():
    schedule = WarmupCosine(0.1, total_steps=100, warmup_steps=10, final_fraction=0.01)
    rates = np.array([float(schedule(t)) for t in range(120)])
    np.testing.assert_allclose(rates[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-5)
    t = np.arange(10, 100)
    decay = 0.01 + 0.99 * 0.5 * (1 + np.cos(math.pi * (t - 10) / 90))
    np.testing.assert_allclose(rates[10:100], 0.1 * decay, rtol=1e-5)
    np.testing.assert_allclose(rates[100:], 0.001, rtol=1e-5)
    assert rates.max() == pytest.approx(0.1) and rates[9] == pytest.approx(0.1)  # the peak
    schedule.cut.assign(0.1)  # what the collapse guard does
    assert float(schedule(10)) == pytest.approx(0.01)
    assert WarmupCosine.from_config(schedule.get_config()).total_steps == 100


@pytest.mark.parametrize(
    ("steps", "per_epoch", "expected"),
    [(400, 17, 24), (400, 8, 50), (400, 1000, 3), (400, 2, 60), (0, 10, 3)],
)
def test_epochs_scale_with_the_data_within_bounds(steps, per_epoch, expected):
    assert epochs_for_steps(steps, per_epoch, min_epochs=3, max_epochs=60) == expected
