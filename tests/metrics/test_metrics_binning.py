"""Uniform calibration bins: arithmetic bin index equals the binary search exactly."""

from __future__ import annotations

import numpy as np
import pytest

from xebench.metrics.calibration import uniform_bin_index


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 60, 100, 299, 300, 1000])
def test_uniform_bin_index_equals_searchsorted_on_and_around_every_edge(n_bins: int) -> None:
    edges = np.arange(n_bins + 1) / n_bins
    rng = np.random.default_rng(n_bins)
    scores = np.concatenate(
        [
            rng.uniform(size=20_000),
            edges,
            np.nextafter(edges, 2.0),
            np.nextafter(edges, -1.0),
            np.linspace(0, 1, 1001),  # 0.1, 0.3, ... as users' rounded outputs
        ]
    )
    scores = np.clip(scores, 0.0, 1.0)
    expected = np.searchsorted(edges[1:-1], scores)  # lower bin on an inner edge
    np.testing.assert_array_equal(uniform_bin_index(scores, edges), expected)


def test_coarse_uniform_edges_are_exactly_fine_edges() -> None:
    """15-bin edges are every 20th 300-bin edge, bit for bit, so bins sum exactly."""
    fine = np.arange(301) / 300
    for n_bins in (10, 15, 20, 25, 30, 50, 60, 100):
        coarse = np.arange(n_bins + 1) / n_bins
        np.testing.assert_array_equal(fine[:: 300 // n_bins], coarse)
