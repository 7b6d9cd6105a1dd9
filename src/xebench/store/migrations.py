"""The store's schema: its tables, and the migrations that create or upgrade them.

Tables (schema version :data:`SCHEMA_VERSION`; :data:`MIGRATIONS` upgrade an
older file when it is opened):

- ``meta``: ``schema_version``.
- ``predictions``: every accepted prediction event, the columns of
  :data:`~xebench.store.schema.PREDICTION_SCHEMA` (``weight`` since schema 7).
- ``labels``: every accepted label event (:data:`~xebench.store.schema.LABEL_SCHEMA`),
  one per (tenant, model, request_id); ``model = ''`` applies to every
  model's prediction of that request.
- ``label_history``: every label a correction replaced, with ``replaced_at``
  and ``replaced_seq`` (the commit that replaced it); ``labels.correction``
  marks the rows that are corrections.
- ``pending_labels``: labels whose prediction had not arrived when they were
  stored. A row leaves when a matching prediction commits; rows received more
  than ``join_window`` ago are *orphans*: counted, kept, never dropped.
- the view ``joined``: each prediction that has a label, with ``label``,
  ``label_time`` and ``label_ingest_time``; a label naming the model wins over
  a model-less one.
- ``drift_references``: a drift reference supplied as data, per (tenant,
  model), as counts of each feature in its monitoring bins
  (:mod:`xebench.monitor.references`); the bucket tables are
  :mod:`xebench.store.buckets`'.
- ``alerts``: the current state of each SLO burn-rate alert, one row per
  (tenant, SLO, severity) (:mod:`xebench.alerting.store`, since schema 8);
  ``alert_history``: every state transition of an alert;
  ``alert_outbox``: every notification to send (webhook, Alertmanager), with
  its idempotency key, attempts, and when it was delivered or dead-lettered.
- since schema 9, the score buckets also keep the sums of the label-lag bridge's
  estimate (:data:`~xebench.store.bucket_schema.MIGRATION_9_ESTIMATES`);
- since schema 10, a language model's scored sequences are prediction rows with a
  ``tokens`` summary, folded into ``bucket_tokens`` and its twins
  (:data:`~xebench.store.bucket_schema.MIGRATION_10_TOKENS`).

:data:`MIGRATIONS` is the one list of schema steps: every table of the store,
the bucket tables included, is created by an entry of it.

Example:
    >>> con = duckdb.connect(":memory:")
    >>> migrate(con, ":memory:") == SCHEMA_VERSION, migrate(con, ":memory:")
    (True, 10)
    >>> con.execute("SELECT count(*) FROM joined").fetchone()
    (0,)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from .bucket_schema import MIGRATION_10_TOKENS
from .buckets import (
    MIGRATION_2,
    MIGRATION_3_HOURS,
    MIGRATION_4_SCORE_WEIGHTS,
    MIGRATION_9_ESTIMATES,
)
from .connection import transaction
from .errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

# Migration 1. Frozen: a later schema change is a new migration, never an edit here
# (files created by this version must upgrade the same way everywhere).
_MIGRATION_1 = """
CREATE TABLE predictions (
    fp BIGINT NOT NULL, rfp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    version VARCHAR NOT NULL, request_id VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    classes VARCHAR[] NOT NULL, probabilities DOUBLE[] NOT NULL,
    cohort MAP(VARCHAR, VARCHAR) NOT NULL, features VARCHAR NOT NULL,
    payload_hash BIGINT NOT NULL
);
CREATE TABLE labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    payload_hash BIGINT NOT NULL
);
CREATE TABLE pending_labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, received_at TIMESTAMPTZ NOT NULL
);
-- Candidates first, by fingerprint alone (integer hash joins: cheap); then the label
-- naming the model (m), else the model-less one (a), compared on the exact identity.
CREATE VIEW joined AS
WITH candidates AS (
    SELECT * FROM predictions
    WHERE fp IN (SELECT fp FROM labels) OR rfp IN (SELECT fp FROM labels WHERE model = '')
)
SELECT p.*,
       CASE WHEN m.fp IS NOT NULL THEN m.label ELSE a.label END AS label,
       CASE WHEN m.fp IS NOT NULL THEN m.event_time ELSE a.event_time END AS label_time,
       CASE WHEN m.fp IS NOT NULL THEN m.ingest_time ELSE a.ingest_time END
           AS label_ingest_time
FROM candidates p
LEFT JOIN labels m
  ON m.fp = p.fp AND m.tenant = p.tenant AND m.model = p.model
 AND m.request_id = p.request_id
LEFT JOIN labels a
  ON a.fp = p.rfp AND a.tenant = p.tenant AND a.model = '' AND a.request_id = p.request_id
WHERE m.fp IS NOT NULL OR a.fp IS NOT NULL;
"""

# Migration 3: drift references supplied as data (xebench.monitor.references), as counts in the
# model's monitoring bins -- never the uploaded rows themselves; and the hourly twins of
# the bucket tables (buckets.MIGRATION_3_HOURS). Frozen.
_MIGRATION_3 = """
CREATE TABLE drift_references (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, feature VARCHAR NOT NULL,
    counts DOUBLE[] NOT NULL, n_rows BIGINT NOT NULL, source VARCHAR NOT NULL,
    uploaded_at TIMESTAMPTZ NOT NULL
);
"""

# Migration 5: label corrections. A label event with "correction": true replaces the
# stored label of its (tenant, model, request_id) in place (its seq, the order in which
# labels join, is kept); the replaced row goes to label_history with when and by which
# commit (replaced_seq) it was replaced, for audit and for the bucket fold, which
# restates the buckets of the corrected pairs (bucket_restate.py). Frozen.
_MIGRATION_5 = """
ALTER TABLE labels ADD COLUMN correction BOOLEAN DEFAULT false;
CREATE TABLE label_history (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    payload_hash BIGINT NOT NULL, seq BIGINT NOT NULL, correction BOOLEAN NOT NULL,
    replaced_at TIMESTAMPTZ NOT NULL, replaced_seq BIGINT NOT NULL
);
"""

# Migration 6: the daily twins of the bucket tables (bucket_schema.DAILY), filled by
# retention's roll-up of old hours (retention.roll_hours_before). Frozen.
_MIGRATION_6 = """
CREATE TABLE bucket_scores_day AS SELECT * FROM bucket_scores_hour LIMIT 0;
CREATE TABLE bucket_features_day AS SELECT * FROM bucket_features_hour LIMIT 0;
"""

# Migration 7: a business weight per prediction (the event's optional "weight"), by which
# every window statistic is weighted. Stored events had none: their weight is 1, which
# leaves their payload hashes and their buckets as they were. Frozen.
_MIGRATION_7 = """
ALTER TABLE predictions ADD COLUMN weight DOUBLE DEFAULT 1;
"""

# Migration 8: the SLO alert lifecycle (xebench.alerting). ``alerts`` holds the current state
# of each alert (key: "tenant/slo/severity"), ``alert_history`` every transition, and
# ``alert_outbox`` every notification to send, written in the transaction of the state
# change it reports, so none is lost between the two; a delivery worker sends them and
# records the outcome. Labels, annotations, evidence and payloads are JSON text. Frozen.
_MIGRATION_8 = """
CREATE TABLE alerts (
    key VARCHAR PRIMARY KEY, tenant VARCHAR NOT NULL, slo VARCHAR NOT NULL,
    severity VARCHAR NOT NULL, state VARCHAR NOT NULL, since TIMESTAMPTZ NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL, holding_since TIMESTAMPTZ, fired_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ, last_notified TIMESTAMPTZ, last_refreshed TIMESTAMPTZ,
    notified BOOLEAN NOT NULL, fingerprint VARCHAR NOT NULL, labels VARCHAR NOT NULL,
    annotations VARCHAR NOT NULL, evidence VARCHAR NOT NULL
);
CREATE TABLE alert_history (
    key VARCHAR NOT NULL, tenant VARCHAR NOT NULL, slo VARCHAR NOT NULL,
    severity VARCHAR NOT NULL, from_state VARCHAR NOT NULL, to_state VARCHAR NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL, fingerprint VARCHAR NOT NULL, notices VARCHAR[] NOT NULL,
    evidence VARCHAR NOT NULL
);
CREATE SEQUENCE alert_outbox_id START 1;
CREATE TABLE alert_outbox (
    id BIGINT PRIMARY KEY DEFAULT nextval('alert_outbox_id'), key VARCHAR NOT NULL,
    target VARCHAR NOT NULL, kind VARCHAR NOT NULL, payload VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL UNIQUE, created_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ, dead_at TIMESTAMPTZ, superseded_by BIGINT,
    last_error VARCHAR, last_status INTEGER
);
"""

#: ``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1``: SQL
#: text, or a function of the DuckDB connection. Append, never edit.
MIGRATIONS: list[str | Callable[[duckdb.DuckDBPyConnection], None]] = [
    _MIGRATION_1,
    MIGRATION_2,
    _MIGRATION_3 + MIGRATION_3_HOURS,
    MIGRATION_4_SCORE_WEIGHTS,
    _MIGRATION_5,
    _MIGRATION_6,
    _MIGRATION_7,
    _MIGRATION_8,
    MIGRATION_9_ESTIMATES,
    MIGRATION_10_TOKENS,
]

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(con: duckdb.DuckDBPyConnection, path: str | Path) -> int:
    """Create or upgrade the schema of ``con`` in one transaction; return the schema version.

    Raises:
        StoreError: the database (``path``, for the message) has a higher schema
            version than :data:`MIGRATIONS` knows.

    Example:
        >>> con = duckdb.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        >>> _ = con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
        >>> migrate(con, "new.duckdb")
        Traceback (most recent call last):
        ...
        xebench.errors.StoreError: event store new.duckdb has schema version 99, newer \
than this xebench knows (10); upgrade xebench
    """
    with transaction(con):
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        target = len(MIGRATIONS)
        if version > target:
            raise StoreError(
                f"event store {path} has schema version {version}, newer than this "
                f"xebench knows ({target}); upgrade xebench"
            )
        for step in MIGRATIONS[version:]:
            if callable(step):
                step(con)
            else:
                con.execute(step)
        if version != target:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)])
    return target
