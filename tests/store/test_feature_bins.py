"""FeatureBins.index_texts (Arrow text, binned once per distinct value) against the
per-value definition: a dict lookup of each Python value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from xebench.store.feature_bins import FeatureBins

POOL = ["de", "fr", "ü", "日本", "1.5", "1", "true", "", " de", "DE", "nan", "x" * 40, "__other__"]


def _per_value(categories: tuple[str, ...], values: list[str | None]) -> list[int]:
    """The bin of each value by the rule: its category's position, OTHER after them,
    missing (None or "") last."""
    out = []
    for v in values:
        if v is None or v == "":
            out.append(len(categories) + 1)
        else:
            out.append(categories.index(v) if v in categories else len(categories))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_index_texts_bins_as_the_per_value_rule_and_as_index(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, 6))
    categories = tuple(str(c) for c in rng.choice([p for p in POOL if p], k, replace=False))
    bins = FeatureBins("f", "categorical", categories=categories)
    n = int(rng.integers(0, 300))
    values: list[str | None] = [
        None if rng.random() < 0.1 else str(rng.choice(POOL)) for _ in range(n)
    ]
    texts = pa.array(values, pa.string())
    got = bins.index_texts(texts).tolist()
    assert got == _per_value(categories, values)
    assert got == bins.index(np.array(values, dtype=object)).tolist()
    chunked = pa.chunked_array([texts.slice(0, n // 2), texts.slice(n // 2)], pa.string())
    assert bins.index_texts(chunked).tolist() == got
