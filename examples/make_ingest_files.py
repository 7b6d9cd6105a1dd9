"""Generate the files of the ingestion and reference examples in docs/.

Run ``python examples/make_ingest_files.py`` (fixed seed: the files are the
same on every machine). It writes, in ``examples/data/``:

- ``preds.csv``: 1,000 predictions of a fraud model (``request_id``,
  ``timestamp``, ``p_fraud``, ``region``, ``amount``) on 2026-11-24;
- ``labels.csv``: the labels (``request_id``, ``is_fraud``) of every second
  request;
- ``bad.csv``: ``preds.csv`` with one probability out of range (data row 8);
- ``validation.csv``: 2,000 rows of the features the demo's fraud model is
  monitored on (drawn by the demo's generator, before its drift), plus an
  ``email`` column, to upload as a drift reference.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from xebench.demo.stream import generate

DATA = Path(__file__).resolve().parent / "data"
SEED = 2026
REGIONS = ["eu", "us", "apac", "latam"]


def prediction_rows() -> list[list[object]]:
    """The rows of ``preds.csv``: deterministic ids, hours and probabilities."""
    rng = np.random.default_rng(SEED)
    return [
        [
            f"tx-{i}",
            f"2026-11-24T{i % 24:02d}:{i % 60:02d}:00Z",
            round((i * 37 % 1000) / 1000, 3),
            REGIONS[i % len(REGIONS)],
            round(float(rng.lognormal(np.log(40), 0.8)), 2),
        ]
        for i in range(1000)
    ]


def validation_rows(n_rows: int = 2000) -> list[list[object]]:
    """The rows of ``validation.csv``: fraud features of the demo stream before its drift.

    They come from the demo's own generator (``xebench.demo.stream``, fixed
    seed and end time, every k-th event of a day), so an uploaded reference
    looks like the traffic the demo's fraud model saw before ``amount``
    drifted in one region.
    """
    stream = generate(seed=7, now=datetime(2026, 11, 1, tzinfo=UTC), hours=24, rate_per_minute=10)
    fraud = [e for e in stream.predictions if e["model"] == stream.facts["fraud_model"]]
    keys = ["amount", "account_age_days", "n_items", "hour_of_day", "merchant_category"]
    return [
        [*(event["features"][key] for key in keys), f"user{i}@example.com"]
        for i, event in enumerate(fraud[:: max(1, len(fraud) // n_rows)][:n_rows])
    ]


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (DATA / name).open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    header = ["request_id", "timestamp", "p_fraud", "region", "amount"]
    rows = prediction_rows()
    write("preds.csv", header, rows)
    bad = [list(row) for row in rows]
    bad[7][2] = 1.3  # data row 8: a probability out of range
    write("bad.csv", header, bad)
    labels = [[f"tx-{i}", int(i % 3 == 0)] for i in range(0, 1000, 2)]
    write("labels.csv", ["request_id", "is_fraud"], labels)
    write(
        "validation.csv",
        ["amount", "account_age_days", "n_items", "hour_of_day", "merchant_category", "email"],
        validation_rows(),
    )


if __name__ == "__main__":
    main()
