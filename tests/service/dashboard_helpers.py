"""Shared by the dashboard's tests: two tenants' traffic with hostile text, sent through the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import numpy as np

from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token

ACME, OTHER = "acme-token-0123456789", "other-token-0123456789"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = (SCRIPT, IMG)
SECRET_MODEL = "other-tenants-secret-model"


def config(**fields: Any) -> ServiceConfig:
    """Two tenants with a token each (both may ingest and read)."""
    tokens = TokenRegistry(
        [
            TokenEntry("acme", frozenset({"ingest", "read"}), hash_token(ACME)),
            TokenEntry("other", frozenset({"ingest", "read"}), hash_token(OTHER)),
        ]
    )
    return ServiceConfig(tokens=tokens, **fields)


def traffic(
    n: int = 600, *, model: str = "fraud", seed: int = 0, now: datetime | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` predictions of two versions over the last 50 minutes and their labels; cohort
    ``region`` takes the hostile values too (and so do request ids and a feature)."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    truth = rng.uniform(0.02, 0.98, n)
    p = np.clip(truth + rng.normal(0, 0.1, n), 0.01, 0.99)
    y = (rng.uniform(size=n) < truth).astype(int)
    regions = np.array(["eu", "us", *HOSTILE])[rng.integers(0, 4, n)]
    predictions, labels = [], []
    for i in range(n):
        moment = now - timedelta(seconds=60 + int(rng.integers(0, 2900)))
        stamp = moment.isoformat().replace("+00:00", "Z")
        rid = f"{SCRIPT}-{i}" if i % 50 == 0 else f"r{i}"
        predictions.append(
            {
                "request_id": rid,
                "model": model,
                "version": "v2" if i % 3 == 0 else "v1",
                "timestamp": stamp,
                "probabilities": float(p[i]),
                "cohort": {"region": str(regions[i])},
                "features": {"amount": float(rng.lognormal(3, 1)), "note": IMG},
            }
        )
        labels.append({"request_id": rid, "model": model, "label": int(y[i]), "timestamp": stamp})
    return predictions, labels


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Cells(HTMLParser):
    """The text of every element with ``data-metric`` under a row with ``data-window``:
    {(window, metric): text}; and every inline ``<script>`` without ``src`` and its type."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.inline_scripts: list[str | None] = []
        self.style_attributes = 0
        self._window: str | None = None
        self._metric: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values:
            self.style_attributes += 1
        if tag == "script" and "src" not in values:
            self.inline_scripts.append(values.get("type"))
        if "data-window" in values:
            self._window = values["data-window"]
        if "data-metric" in values and self._window is not None:
            self._metric = values["data-metric"]
            self.cells[self._window, self._metric] = ""

    def handle_data(self, data: str) -> None:
        if self._metric is not None and self._window is not None:
            self.cells[self._window, self._metric] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "dd"):
            self._metric = None
        if tag in ("tr", "table"):
            self._window = None if tag == "table" else self._window


def cells(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    return parser


def number(text: str) -> float | None:
    """A shown number back as a float (``n/a``: None; ``1,234``: 1234; ``43.2%``: 0.432)."""
    text = text.strip()
    if text == "n/a":
        return None
    if text.endswith("%"):
        return float(text[:-1].replace(",", "")) / 100
    return float(re.sub(r"[,\s]", "", text))
