"""Generate examples/data/loans_reference.csv and loans_current.csv: two drifts planted.

Run ``python examples/make_drift_dataset.py`` (fixed seed: the files are the
same on every machine). Each row is a loan application scored by a model:
the reference is the month the model was validated on, the current file a
later month in which

- ``income`` rose by about 25% (a new customer segment), and
- ``channel`` moved towards the mobile app (30% -> 50% of applications),

while ``age``, ``loan_amount``, ``term_months`` and ``p_default`` keep
their distributions: ``xebench drift`` should flag exactly the first two.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

N_ROWS = 5_000
SEED = 2027
DATA = Path(__file__).resolve().parent / "data"


def make(current: bool, n_rows: int = N_ROWS, seed: int = SEED) -> dict[str, np.ndarray]:
    """The columns of one month (``current``: the month with the drift)."""
    rng = np.random.default_rng(seed + int(current))
    income = rng.lognormal(np.log(52_000 * (1.25 if current else 1.0)), 0.45, n_rows)
    app_share = 0.5 if current else 0.3
    channel = rng.choice(
        ["app", "web", "branch"],
        size=n_rows,
        p=[app_share, 0.55 - app_share / 2, 0.45 - app_share / 2],
    )
    return {
        "income": np.round(income, -1),
        "age": rng.integers(21, 70, n_rows),
        "loan_amount": np.round(rng.gamma(2.0, 6_000.0, n_rows), -2),
        "term_months": rng.choice([12, 24, 36, 60], size=n_rows, p=[0.2, 0.3, 0.35, 0.15]),
        "channel": channel,
        "p_default": np.round(rng.beta(1.5, 18.0, n_rows), 5),
    }


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    for name, current in (("loans_reference.csv", False), ("loans_current.csv", True)):
        columns = make(current)
        path = DATA / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values(), strict=True))
        print(f"wrote {path} ({N_ROWS} rows)")


if __name__ == "__main__":
    main()
