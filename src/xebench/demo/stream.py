"""A synthetic production stream with planted problems, for ``xebench demo``.

:func:`generate` builds prediction and label events, exactly as clients would
send them to ``POST /v1/predictions`` and ``POST /v1/labels``, for two models:

- ``fraud``, binary (``probabilities`` is P(fraud)): version ``v1`` serves
  90% of the traffic and the candidate ``v2`` a 10% canary. ``v2`` is as good
  as ``v1`` everywhere except on ``device=android``, where it is overconfident
  and noisy, so a canary comparison restricted to that cohort fails and over
  all traffic the candidate is measurably worse.
- ``triage``, four classes (``low``, ``medium``, ``high``, ``critical``),
  version ``v1``, on its own request ids.

Ground truth comes first: features are drawn, a logistic (fraud) or softmax
(triage) function of them gives the true probabilities, the label is drawn
from those, and each model's prediction is the truth seen through
model-specific noise. So the numbers are realistic: fraud log loss about 0.25
nats at a base rate of about 9%, triage about 1 nat.

Planted problems (their parameters are in :attr:`DemoStream.facts`):

- **Drift**: from halfway through the stream, ``amount`` in ``region=eu`` is
  2.5 times larger (a new merchant partner with bigger baskets, no riskier
  than before). The models, trained on the old traffic, read the larger
  amounts as risk and over-predict there: eu log loss degrades.
- **Canary**: ``fraud`` ``v2`` is worse on ``device=android``.
- **Delayed labels**: a label arrives after a log-normal delay (median about
  25 minutes; a slow component, e.g. manual review, has a tail of many
  hours); 8% of predictions are never labelled, and labels due after ``now``
  have not arrived yet, so the latest hour is mostly unlabelled.

:func:`load` validates the events with :func:`xebench.ingest.events.parse_predictions`
/ :func:`~xebench.ingest.events.parse_labels` (the rules of the HTTP service) and
writes them into an :class:`~xebench.store.EventStore`.

Example:
    >>> from datetime import UTC, datetime
    >>> stream = generate(seed=1, now=datetime(2026, 1, 2, tzinfo=UTC), hours=1,
    ...                   rate_per_minute=20)
    >>> sorted(stream.predictions[0])
    ['cohort', 'features', 'model', 'probabilities', 'request_id', 'timestamp', 'version']
    >>> stream.facts["drift_feature"], stream.facts["canary_bad_cohort"]
    ('amount', ('device', 'android'))
    >>> from xebench.store import EventStore
    >>> counts = load(EventStore(":memory:"), stream)
    >>> counts == {"predictions": len(stream.predictions), "labels": len(stream.labels)}
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..ingest.events import Limits, parse_labels, parse_predictions
from ..store.event_store import EventBatch, EventStore, WriteOutcome

__all__ = ["FRAUD_MODEL", "TRIAGE_CLASSES", "TRIAGE_MODEL", "DemoStream", "generate", "load"]

FRAUD_MODEL = "fraud"
TRIAGE_MODEL = "triage"
TRIAGE_CLASSES = ("low", "medium", "high", "critical")

# --- the world ----------------------------------------------------------------------------
# Every constant below is a planted truth; the tests check the consequences from the events.

_FRAUD_SHARE = 0.7  # of all predictions; the rest are triage's
_CANARY_SHARE = 0.1  # of fraud traffic scored by v2
_NEVER_LABELLED = 0.08
_DRIFT_FACTOR = 2.5
_DRIFT_REGION = "eu"
_BAD_COHORT = ("device", "android")

_REGIONS = ("us", "eu", "apac", "latam")
_REGION_SHARES = (0.40, 0.30, 0.20, 0.10)
_REGION_UTC_OFFSET = (-5, 1, 8, -3)  # hours, for the local hour of day
_REGION_AMOUNT = (1.2, 1.0, 0.8, 0.7)
_REGION_RISK = (0.0, -0.1, 0.2, 0.35)

_DEVICES = ("ios", "android", "web")
_DEVICE_SHARES = (0.35, 0.40, 0.25)
_DEVICE_RISK = (-0.2, 0.15, 0.3)

_CATEGORIES = ("grocery", "fashion", "electronics", "travel", "gaming", "digital_goods")
_CATEGORY_SHARES = (0.30, 0.20, 0.15, 0.10, 0.10, 0.15)
_CATEGORY_AMOUNT = (0.6, 1.2, 2.5, 3.0, 0.8, 0.5)
_CATEGORY_RISK = (-0.6, -0.1, 0.5, 0.3, 0.4, 0.7)
_CATEGORY_SEVERITY = (-0.4, 0.0, 0.4, 0.6, 0.1, 0.3)

# Label delay: a mixture of log-normals (seconds): most labels come from an automatic
# check within minutes, a slower share from manual review, hours later.
_FAST_DELAY = (20 * 60.0, 0.9)  # (median, sigma of the log)
_SLOW_DELAY = (4 * 3600.0, 0.7)
_SLOW_SHARE = 0.15

# Prediction noise (on the logit scale) of each model.
_FRAUD_NOISE = 0.35
_CANARY_BAD_SLOPE, _CANARY_BAD_SHIFT, _CANARY_BAD_NOISE = 1.3, 1.6, 1.0
_TRIAGE_NOISE = 0.4

_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class DemoStream:
    """Synthetic events and the truths planted in them.

    Attributes:
        predictions: prediction events in the HTTP format (``request_id``,
            ``model``, ``version``, ``timestamp`` RFC 3339 with ``+00:00``,
            ``probabilities``, ``classes`` for the multiclass model,
            ``cohort`` ``{"region", "device"}``, ``features``), in time order.
        labels: label events (``request_id``, ``model``, ``label``,
            ``timestamp``) that have arrived by ``now``, in arrival order.
            Fraud labels are the integers 0 and 1, triage labels class names.
        now: the end of the stream (UTC).
        facts: the planted truths (see :func:`generate`).

    Example:
        >>> stream = generate(hours=0.5, rate_per_minute=10)
        >>> stream.now.tzinfo is UTC, len(stream.predictions) > len(stream.labels)
        (True, True)
    """

    predictions: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    now: datetime
    facts: dict[str, Any] = field(default_factory=dict)


def _arrival_times(
    rng: np.random.Generator, start_ms: int, now_ms: int, rate_per_minute: float
) -> NDArray[np.int64]:
    """Sorted event times (ms since the epoch) of a Poisson process with a daily cycle."""
    minutes = (now_ms - start_ms) / 60_000
    edges = np.linspace(start_ms, now_ms, max(2, math.ceil(minutes) + 1))
    utc_hour = (edges / _MS_PER_HOUR) % 24
    # Busiest at 15:00 UTC (afternoon in Europe, morning in the Americas).
    rate = 1 + 0.35 * np.cos(2 * np.pi * (utc_hour - 15) / 24)
    cumulative = np.concatenate(([0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)))
    expected = rate_per_minute * minutes * cumulative[-1] / (len(edges) - 1)
    n = int(rng.poisson(expected))
    quantiles = np.sort(rng.random(n)) * cumulative[-1]
    times = np.interp(quantiles, cumulative, edges).astype(np.int64)
    return np.clip(times, start_ms, now_ms)


def _rfc3339(ms: NDArray[np.int64]) -> list[str]:
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [t + "+00:00" for t in text.tolist()]


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def generate(
    *,
    seed: int = 0,
    now: datetime | None = None,
    hours: float = 48.0,
    rate_per_minute: float = 60.0,
) -> DemoStream:
    """A production stream of ``hours`` ending at ``now``, about ``rate_per_minute`` events.

    The rate has a daily cycle (busiest at 15:00 UTC); 70% of the predictions
    are ``fraud``'s, 30% ``triage``'s. The same ``seed`` and ``now`` give the
    same stream (``now`` defaults to the current time, truncated to the
    millisecond).

    ``facts`` holds the planted truths: ``seed``, ``start`` and ``now``
    (ISO 8601), ``models`` (model -> versions), ``fraud_model``,
    ``triage_model``, ``triage_classes``; the drift: ``drift_feature``
    (``"amount"``), ``drift_region`` (``"eu"``), ``drift_start`` (ISO 8601,
    halfway), ``drift_factor`` (2.5); the canary: ``canary_model``,
    ``baseline_version`` (``"v1"``), ``canary_version`` (``"v2"``),
    ``canary_share`` (0.1), ``canary_bad_cohort`` (``("device", "android")``);
    labels: ``never_labelled_share`` (0.08), ``label_delay_median_s`` (the
    median of the delays drawn, arrived or not: the observed lag is shorter,
    since late labels are still missing), ``labels_not_arrived_yet``;
    the traffic: ``region_shares``, ``device_shares``, ``fraud_base_rate``
    (the share of fraud among fraud predictions), ``n_predictions`` (per model).

    Raises:
        InvalidInputError: ``now`` without a time zone, ``hours`` or
            ``rate_per_minute`` not positive.

    Example:
        >>> stream = generate(seed=3, now=datetime(2026, 1, 2, tzinfo=UTC), hours=2,
        ...                   rate_per_minute=30)
        >>> p = stream.predictions[0]
        >>> p["timestamp"] >= "2026-01-01T22:00", p["timestamp"].endswith("+00:00")
        (True, True)
        >>> sorted({(e["model"], e["version"]) for e in stream.predictions})
        [('fraud', 'v1'), ('fraud', 'v2'), ('triage', 'v1')]
        >>> max(e["timestamp"] for e in stream.labels) <= "2026-01-02T00:00:00.000+00:00"
        True
        >>> stream.facts["drift_start"]
        '2026-01-01T23:00:00+00:00'
        >>> generate(seed=3, now=stream.now, hours=2, rate_per_minute=30) == stream
        True
    """
    if now is None:
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInputError(
            "now", "must have a time zone (e.g. datetime.now(UTC)), not a naive time", value=now
        )
    if not hours > 0 or not math.isfinite(hours):
        raise InvalidInputError("hours", "must be positive and finite", value=hours)
    if not rate_per_minute > 0 or not math.isfinite(rate_per_minute):
        raise InvalidInputError(
            "rate_per_minute", "must be positive and finite", value=rate_per_minute
        )
    now = now.astimezone(UTC)
    rng = np.random.default_rng(seed)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    now_ms = (now - epoch) // timedelta(milliseconds=1)
    start_ms = now_ms - round(hours * _MS_PER_HOUR)
    drift_ms = start_ms + (now_ms - start_ms) // 2

    t = _arrival_times(rng, start_ms, now_ms, rate_per_minute)
    n = t.size
    is_fraud = rng.random(n) < _FRAUD_SHARE

    # Cohorts and features, the same population for both models.
    region = rng.choice(len(_REGIONS), size=n, p=_REGION_SHARES)
    device = rng.choice(len(_DEVICES), size=n, p=_DEVICE_SHARES)
    category = rng.choice(len(_CATEGORIES), size=n, p=_CATEGORY_SHARES)
    local_hour = ((t // _MS_PER_HOUR) + np.take(_REGION_UTC_OFFSET, region)) % 24
    age = np.floor(rng.lognormal(math.log(200), 1.3, n)).astype(np.int64)
    n_items = 1 + rng.poisson(1.2, n)
    base_amount = (
        rng.lognormal(math.log(40), 0.8, n)
        * np.take(_REGION_AMOUNT, region)
        * np.take(_CATEGORY_AMOUNT, category)
        * (1 + 0.15 * (n_items - 1))
    )
    drifted = (region == _REGIONS.index(_DRIFT_REGION)) & (t >= drift_ms)
    amount = np.round(np.where(drifted, base_amount * _DRIFT_FACTOR, base_amount), 2)
    amount = np.maximum(amount, 0.5)

    def risk(amount_seen: NDArray[np.float64]) -> NDArray[np.float64]:
        night = (local_hour < 6).astype(float)
        return (
            0.9 * np.log(amount_seen / 60)
            - 0.5 * np.log1p(age / 30)
            + np.take(_CATEGORY_RISK, category)
            + np.take(_DEVICE_RISK, device)
            + np.take(_REGION_RISK, region)
            + 0.8 * night
            + 0.1 * (n_items - 2)
        )

    # The truth depends on what the amount means for risk (the drifted amounts are bigger
    # baskets, not riskier ones); the models only see the amount as sent.
    true_risk = risk(np.maximum(np.where(drifted, amount / _DRIFT_FACTOR, amount), 0.5))
    seen_risk = risk(amount)

    # fraud: truth, label, and the two versions' predictions.
    p_fraud = _sigmoid(true_risk - 2.0)
    fraud_label = (rng.random(n) < p_fraud).astype(np.int64)
    canary = rng.random(n) < _CANARY_SHARE
    bad = canary & (device == _DEVICES.index(_BAD_COHORT[1]))
    z = seen_risk - 2.0 + rng.normal(0.0, _FRAUD_NOISE, n)
    z = np.where(
        bad,
        _CANARY_BAD_SLOPE * (seen_risk - 2.0)
        + _CANARY_BAD_SHIFT
        + rng.normal(0.0, _CANARY_BAD_NOISE, n),
        z,
    )
    fraud_prob = np.clip(_sigmoid(z), 1e-6, 1 - 1e-6)

    # triage: an ordinal severity, four classes.
    cuts = np.array([0.0, -0.2, -1.4, -3.0])
    steps = np.arange(4.0)

    def severity(r: NDArray[np.float64]) -> NDArray[np.float64]:
        s = 0.6 * r + np.take(_CATEGORY_SEVERITY, category) + 0.5
        return s[:, None] * steps[None, :] + cuts[None, :]

    p_triage = _softmax(severity(true_risk))
    triage_label = (rng.random(n)[:, None] > np.cumsum(p_triage, axis=1)).sum(axis=1)
    triage_label = np.minimum(triage_label, 3)
    triage_prob = _softmax(severity(seen_risk) + rng.normal(0.0, _TRIAGE_NOISE, (n, 4)))

    # Labels: delay, never-labelled share, and those not arrived by now.
    slow = rng.random(n) < _SLOW_SHARE
    delay_s = np.where(
        slow,
        rng.lognormal(math.log(_SLOW_DELAY[0]), _SLOW_DELAY[1], n),
        rng.lognormal(math.log(_FAST_DELAY[0]), _FAST_DELAY[1], n),
    )
    label_ms = t + np.round(delay_s * 1000).astype(np.int64)
    labelled = rng.random(n) >= _NEVER_LABELLED
    arrived = labelled & (label_ms <= now_ms)

    # Events.
    stamps = _rfc3339(t)
    label_stamps = _rfc3339(label_ms[arrived])
    serial = np.empty(n, dtype=np.int64)
    serial[is_fraud] = np.arange(int(is_fraud.sum()))
    serial[~is_fraud] = np.arange(int((~is_fraud).sum()))
    request_ids = [
        f"{FRAUD_MODEL if f else TRIAGE_MODEL}-{s:07d}"
        for f, s in zip(is_fraud.tolist(), serial.tolist(), strict=True)
    ]
    regions = np.array(_REGIONS, dtype=object)[region].tolist()
    devices = np.array(_DEVICES, dtype=object)[device].tolist()
    categories = np.array(_CATEGORIES, dtype=object)[category].tolist()
    versions = np.where(canary, "v2", "v1").tolist()
    triage_classes = list(TRIAGE_CLASSES)
    predictions: list[dict[str, Any]] = []
    for i, (rid, stamp, fraud, reg, dev, amt, days, items, hour, cat) in enumerate(
        zip(
            request_ids,
            stamps,
            is_fraud.tolist(),
            regions,
            devices,
            amount.tolist(),
            age.tolist(),
            n_items.tolist(),
            local_hour.tolist(),
            categories,
            strict=True,
        )
    ):
        event: dict[str, Any] = {
            "request_id": rid,
            "model": FRAUD_MODEL if fraud else TRIAGE_MODEL,
            "version": versions[i] if fraud else "v1",
            "timestamp": stamp,
        }
        if fraud:
            event["probabilities"] = float(fraud_prob[i])
        else:
            event["probabilities"] = triage_prob[i].tolist()
            event["classes"] = triage_classes
        event["cohort"] = {"region": reg, "device": dev}
        event["features"] = {
            "amount": amt,
            "account_age_days": days,
            "n_items": items,
            "hour_of_day": hour,
            "merchant_category": cat,
        }
        predictions.append(event)

    where = np.flatnonzero(arrived)
    order = np.argsort(label_ms[where], kind="stable")
    labels: list[dict[str, Any]] = []
    fraud_labels = fraud_label.tolist()
    triage_labels = triage_label.tolist()
    for k in order.tolist():
        i = int(where[k])
        fraud = bool(is_fraud[i])
        labels.append(
            {
                "request_id": request_ids[i],
                "model": FRAUD_MODEL if fraud else TRIAGE_MODEL,
                "label": fraud_labels[i] if fraud else TRIAGE_CLASSES[triage_labels[i]],
                "timestamp": label_stamps[k],
            }
        )

    def iso(ms: int) -> str:
        return (epoch + timedelta(milliseconds=int(ms))).isoformat()

    facts: dict[str, Any] = {
        "seed": seed,
        "start": iso(start_ms),
        "now": now.isoformat(),
        "models": {FRAUD_MODEL: ["v1", "v2"], TRIAGE_MODEL: ["v1"]},
        "fraud_model": FRAUD_MODEL,
        "triage_model": TRIAGE_MODEL,
        "triage_classes": list(TRIAGE_CLASSES),
        "drift_feature": "amount",
        "drift_region": _DRIFT_REGION,
        "drift_start": iso(drift_ms),
        "drift_factor": _DRIFT_FACTOR,
        "canary_model": FRAUD_MODEL,
        "baseline_version": "v1",
        "canary_version": "v2",
        "canary_share": _CANARY_SHARE,
        "canary_bad_cohort": _BAD_COHORT,
        "never_labelled_share": _NEVER_LABELLED,
        "label_delay_median_s": float(np.median(delay_s)) if n else 0.0,
        "labels_not_arrived_yet": int((labelled & ~arrived).sum()),
        "region_shares": dict(zip(_REGIONS, _REGION_SHARES, strict=True)),
        "device_shares": dict(zip(_DEVICES, _DEVICE_SHARES, strict=True)),
        "fraud_base_rate": float(fraud_label[is_fraud].mean()) if is_fraud.any() else 0.0,
        "n_predictions": {
            FRAUD_MODEL: int(is_fraud.sum()),
            TRIAGE_MODEL: int((~is_fraud).sum()),
        },
    }
    return DemoStream(predictions=predictions, labels=labels, now=now, facts=facts)


def _batches(events: Sequence[dict[str, Any]], size: int) -> list[Sequence[dict[str, Any]]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def _check_conflicts(outcome: WriteOutcome, tenant: str) -> None:
    if outcome.conflicts:
        first = outcome.conflicts[0]
        raise InvalidInputError(
            "tenant",
            f"{len(outcome.conflicts)} demo events conflict with events stored for this tenant "
            f"(same model and request_id, another payload; first: "
            f"{first.model}/{first.request_id}): load into an empty store or another tenant",
            value=tenant,
        )


def load(
    store: EventStore,
    stream: DemoStream,
    *,
    tenant: str = "default",
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Validate and write ``stream`` into ``store``: all predictions, then the labels.

    Events go through :func:`~xebench.ingest.events.parse_predictions` and
    :func:`~xebench.ingest.events.parse_labels` (labels checked against the classes
    the store knows, as the service does) and are written with
    :meth:`~xebench.store.EventStore.write`, one transaction per
    ``batch_size`` events, labels in arrival order. ``progress(n)`` is called
    after each batch with the number of events it held (an increment).

    The stream's ``now`` stands for the server clock when it is later than
    the real one, so a stream generated for a future ``now`` is not refused
    as far-future; ingest times are that clock.

    Returns:
        ``{"predictions": n, "labels": n}``: the events stored for the first
        time (loading the same stream again stores nothing and returns zeros).

    Raises:
        InvalidInputError: ``batch_size`` below 1, or an event conflicts with a
            stored one (another stream loaded into the same tenant); the
            batches before it stay stored.
        xebench.errors.BatchError: an event is invalid (not for a stream
            made by :func:`generate`).

    Example:
        >>> stream = generate(seed=2, hours=0.5, rate_per_minute=20)
        >>> store = EventStore(":memory:")
        >>> seen = []
        >>> counts = load(store, stream, tenant="acme", batch_size=100, progress=seen.append)
        >>> sum(seen) == counts["predictions"] + counts["labels"], max(seen) <= 100
        (True, True)
        >>> load(store, stream, tenant="acme")
        {'predictions': 0, 'labels': 0}
    """
    if batch_size < 1:
        raise InvalidInputError("batch_size", "must be at least 1", value=batch_size)
    limits = Limits(max_events=max(batch_size, Limits().max_events))
    clock = max(datetime.now(UTC), stream.now)
    counts = {"predictions": 0, "labels": 0}
    for chunk in _batches(stream.predictions, batch_size):
        table = parse_predictions(chunk, tenant=tenant, limits=limits, now=clock)
        (outcome,) = store.write([EventBatch("predictions", table)])
        _check_conflicts(outcome, tenant)
        counts["predictions"] += outcome.inserted
        if progress is not None:
            progress(len(chunk))
    labels = sorted(stream.labels, key=lambda event: event["timestamp"])
    for chunk in _batches(labels, batch_size):
        table = parse_labels(
            chunk,
            tenant=tenant,
            limits=limits,
            known_labels=lambda model: store.known_labels(tenant, model),
            now=clock,
        )
        (outcome,) = store.write([EventBatch("labels", table)])
        _check_conflicts(outcome, tenant)
        counts["labels"] += outcome.inserted
        if progress is not None:
            progress(len(chunk))
    return counts
