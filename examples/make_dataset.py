"""Generate examples/data/clicks.csv: three click models of known quality.

Run ``python examples/make_dataset.py`` (fixed seed: the file is the same on
every machine). Each row is an ad impression with its region and device, the
observed click (0/1) and three models' P(click):

- ``p_calibrated``: the true click rate -- the best any model can do;
- ``p_overconfident``: the same ranking pushed towards 0 and 1 (logit x 2.5),
  a model trained too long;
- ``p_underfit``: the same ranking squeezed towards the base rate (logit x
  0.35), a model with too few features.

In ``latam`` the true rate depends more on the device than everywhere else,
so every model is a little worse there: a cohort worth looking at.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

N_ROWS = 10_000
SEED = 2026
OUT = Path(__file__).resolve().parent / "data" / "clicks.csv"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make(n_rows: int = N_ROWS, seed: int = SEED) -> dict[str, np.ndarray]:
    """The columns of the data set."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["eu", "us", "apac", "latam"], size=n_rows, p=[0.4, 0.35, 0.2, 0.05])
    device = rng.choice(["mobile", "desktop"], size=n_rows, p=[0.6, 0.4])
    score = rng.normal(0.0, 1.0, size=n_rows)  # what the models see
    logit = -1.7 + 1.1 * score + 0.3 * (device == "desktop")
    # latam: a device effect the models' score does not capture.
    logit += np.where(region == "latam", 0.9 * np.where(device == "mobile", -1.0, 1.0), 0.0)
    true_rate = sigmoid(logit)
    seen = -1.7 + 1.1 * score + 0.3 * (device == "desktop")  # the models' view
    return {
        "request_id": np.arange(1, n_rows + 1),
        "region": region,
        "device": device,
        "clicked": (rng.uniform(size=n_rows) < true_rate).astype(int),
        "p_calibrated": sigmoid(seen),
        "p_overconfident": sigmoid(2.5 * seen + 1.5),
        "p_underfit": sigmoid(0.35 * (seen + 1.7) - 1.5),
    }


def main() -> None:
    columns = make()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(f"{v:.5f}" if isinstance(v, float) else v for v in row)
    print(f"wrote {OUT} ({len(columns['clicked'])} rows)")


if __name__ == "__main__":
    main()
