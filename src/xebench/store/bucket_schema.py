"""What the bucket tables hold: their granularity, DDL, Arrow schemas and limits.

The constants here fix the layout every other bucket module agrees on (see
:mod:`xebench.store.buckets` for what the tables mean); :class:`MonitorConfig`
bounds how much is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..metrics.blocks import DEFAULT_EPS
from ..stats.binning import OTHER  # the cohort value of the values beyond the cap
from ..stats.codec import SCORE_FIELDS
from ..stats.expected_loss import SUM_LISTS, SUM_SCALARS
from ..stats.tokens import TOKEN_COUNTS, TOKEN_SUMS
from .crossings import check_crossings

__all__ = [
    "ALL",
    "BUCKET_MICROS",
    "BUCKET_SECONDS",
    "DAILY",
    "DAY_SECONDS",
    "ESTIMATE_LISTS",
    "ESTIMATE_SCALARS",
    "FEATURE_KEY",
    "FEATURE_SCHEMA",
    "HOURLY",
    "HOUR_SECONDS",
    "KEY",
    "LAG_BINS",
    "LAG_PER_DECADE",
    "MIGRATION_2",
    "MIGRATION_3_HOURS",
    "MIGRATION_4_SCORE_WEIGHTS",
    "MIGRATION_9_ESTIMATES",
    "MIGRATION_10_TOKENS",
    "OTHER",
    "SCORE_BINS",
    "SCORE_EDGES",
    "SCORE_KEY",
    "SCORE_SCHEMA",
    "TOKEN_SCHEMA",
    "MonitorConfig",
]

#: Width of a bucket; windows and series steps are multiples of it.
BUCKET_SECONDS = 60
#: Cohort key and value of the model-wide buckets.
ALL = ""
#: Uniform bins of the score histogram (binary: P(class 1); multiclass: top-label confidence).
SCORE_BINS = 20
#: Label-lag bins: [0, 1 s), then ten per decade from 1 s to 1e8 s (three years), then more.
LAG_PER_DECADE = 10
LAG_BINS = 2 + 8 * LAG_PER_DECADE
#: Missing or non-numeric values of a numeric feature count in this extra last bin.
BUCKET_MICROS = BUCKET_SECONDS * 1_000_000
SCORE_EDGES = np.linspace(0.0, 1.0, SCORE_BINS + 1)


# Migration 2: commit sequence numbers on events, and the bucket tables. Frozen.
MIGRATION_2 = """
ALTER TABLE predictions ADD COLUMN seq BIGINT DEFAULT 0;
ALTER TABLE labels ADD COLUMN seq BIGINT DEFAULT 0;
CREATE TABLE bucket_scores (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    cohort_key VARCHAR NOT NULL, cohort_value VARCHAR NOT NULL,
    bucket TIMESTAMPTZ NOT NULL, classes VARCHAR[] NOT NULL, delta BOOLEAN NOT NULL,
    n_predictions BIGINT NOT NULL, score_hist UINTEGER[] NOT NULL,
    n_labelled BIGINT NOT NULL, lag_bin USMALLINT[] NOT NULL, lag_count UINTEGER[] NOT NULL,
    n BIGINT NOT NULL, nll_mean DOUBLE NOT NULL, nll_m2 DOUBLE NOT NULL,
    brier_mean DOUBLE NOT NULL, brier_m2 DOUBLE NOT NULL, hits DOUBLE NOT NULL,
    clipped BIGINT NOT NULL, label_weight DOUBLE[] NOT NULL,
    cal_index USMALLINT[] NOT NULL, cal_count DOUBLE[] NOT NULL,
    cal_score_sum DOUBLE[] NOT NULL, cal_hit_sum DOUBLE[] NOT NULL
);
CREATE TABLE bucket_features (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    cohort_key VARCHAR NOT NULL, cohort_value VARCHAR NOT NULL,
    bucket TIMESTAMPTZ NOT NULL, feature VARCHAR NOT NULL, delta BOOLEAN NOT NULL,
    counts UINTEGER[] NOT NULL
);
CREATE TABLE feature_bins (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, feature VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, edges DOUBLE[], categories VARCHAR[], learned_from BIGINT NOT NULL
);
CREATE TABLE cohort_values (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, key VARCHAR NOT NULL,
    value VARCHAR NOT NULL, position INTEGER NOT NULL
);
INSERT INTO meta VALUES ('folded_predictions', '-1'), ('folded_labels', '-1');
"""

#: Each bucket table has an hourly twin holding the same statistics per hour of the
#: prediction's time: a long window or series reads its whole hours there (60x fewer
#: rows to merge) and only its ragged ends from the minutes. Every delta row folded
#: into a minute table is folded into its twin with the bucket floored to the hour,
#: and compaction merges both alike, so an hour row is the merge of its minutes.
HOURLY = {
    "bucket_scores": "bucket_scores_hour",
    "bucket_features": "bucket_features_hour",
    "bucket_tokens": "bucket_tokens_hour",
}
HOUR_SECONDS = 3600

#: The daily twins: retention rolls hour rows older than its ``hours`` horizon into
#: them (whole days) and deletes those hours; reads take whole days from here before
#: the horizon (``meta.hours_rolled_before``). Created by migration 6 (the store's).
DAILY = {
    "bucket_scores": "bucket_scores_day",
    "bucket_features": "bucket_features_day",
    "bucket_tokens": "bucket_tokens_day",
}
DAY_SECONDS = 86_400

#: Part of migration 3 (the store's): the hourly twins, filled from the minute rows of
#: a database folded before they existed (as deltas, merged by the next compaction).
MIGRATION_3_HOURS = """
CREATE TABLE bucket_scores_hour AS SELECT * FROM bucket_scores LIMIT 0;
CREATE TABLE bucket_features_hour AS SELECT * FROM bucket_features LIMIT 0;
INSERT INTO bucket_scores_hour SELECT * REPLACE (
    to_timestamp(epoch_us(bucket) // 3600000000 * 3600) AS bucket, true AS delta
) FROM bucket_scores;
INSERT INTO bucket_features_hour SELECT * REPLACE (
    to_timestamp(epoch_us(bucket) // 3600000000 * 3600) AS bucket, true AS delta
) FROM bucket_features;
"""

#: Migration 4: the columns a ScoreStats row needs beyond migration 2's (stats.codec):
#: the clip policy and the weights, so that buckets of weighted events or of another eps
#: merge to the ScoreStats of those events. Rows folded before were unweighted, with the
#: default eps: their weights are their counts. Frozen.
MIGRATION_4_SCORE_WEIGHTS = "".join(
    f"""
ALTER TABLE {table} ADD COLUMN eps DOUBLE DEFAULT 1e-15;
ALTER TABLE {table} ADD COLUMN weight_sq DOUBLE DEFAULT 0;
ALTER TABLE {table} ADD COLUMN nll_weight DOUBLE DEFAULT 0;
ALTER TABLE {table} ADD COLUMN brier_weight DOUBLE DEFAULT 0;
UPDATE {table} SET weight_sq = n, nll_weight = n, brier_weight = n;
"""
    for table in ("bucket_scores", "bucket_scores_hour")
)

#: Migration 9: the sums of the label-lag bridge (:class:`~xebench.stats.expected_loss.LossSums`)
#: of the predictions: how many (``est_n``; rows folded before are 0, which marks a
#: window's estimate as partial), their weight, the spread of their realized loss, and
#: per score bin (:data:`~xebench.stats.expected_loss.ESTIMATE_BINS`; empty lists on rows
#: without predictions) the weighted losses on a hit and on a miss, plain and times the
#: score. Frozen.
MIGRATION_9_ESTIMATES = "".join(
    f"""
ALTER TABLE {table} ADD COLUMN est_n BIGINT DEFAULT 0;
ALTER TABLE {table} ADD COLUMN est_weight DOUBLE DEFAULT 0;
ALTER TABLE {table} ADD COLUMN est_var DOUBLE DEFAULT 0;
ALTER TABLE {table} ADD COLUMN est_hit DOUBLE[] DEFAULT [];
ALTER TABLE {table} ADD COLUMN est_miss DOUBLE[] DEFAULT [];
ALTER TABLE {table} ADD COLUMN est_hit_s DOUBLE[] DEFAULT [];
ALTER TABLE {table} ADD COLUMN est_miss_s DOUBLE[] DEFAULT [];
"""
    for table in ("bucket_scores", "bucket_scores_hour", "bucket_scores_day")
)
#: The estimate columns (migration 9): scalars, then per-bin lists.
ESTIMATE_SCALARS = tuple(f"est_{name}" for name in SUM_SCALARS)
ESTIMATE_LISTS = tuple(f"est_{name}" for name in SUM_LISTS)

#: Migration 10: the ``tokens`` summary of a language model's scored sequence on its
#: prediction row (null on a classifier's; store.schema.TOKENS_TYPE), and
#: ``bucket_tokens`` with its twins: the :class:`~xebench.stats.TokenStats` sums
#: (stats.tokens.TOKEN_SUMS) of a bucket's sequences. Frozen.
MIGRATION_10_TOKENS = (
    "ALTER TABLE predictions ADD COLUMN tokens STRUCT(n_tokens BIGINT, nll DOUBLE, "
    "extremal BIGINT, n_bytes DOUBLE, n_words DOUBLE) DEFAULT NULL;\n"
    + "".join(
        f"""
CREATE TABLE {table} (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    cohort_key VARCHAR NOT NULL, cohort_value VARCHAR NOT NULL,
    bucket TIMESTAMPTZ NOT NULL, delta BOOLEAN NOT NULL,
    n_sequences BIGINT NOT NULL, n_tokens BIGINT NOT NULL, nll_sum DOUBLE NOT NULL,
    nll_sq DOUBLE NOT NULL, tokens_sq DOUBLE NOT NULL, nll_tokens DOUBLE NOT NULL,
    seq_ce_sum DOUBLE NOT NULL, seq_ce_sq DOUBLE NOT NULL, seq_ppl_sum DOUBLE NOT NULL,
    seq_ppl_sq DOUBLE NOT NULL, extremal BIGINT NOT NULL, n_with_bytes BIGINT NOT NULL,
    n_bytes DOUBLE NOT NULL, bytes_sq DOUBLE NOT NULL, nll_bytes DOUBLE NOT NULL,
    n_with_words BIGINT NOT NULL, n_words DOUBLE NOT NULL, words_sq DOUBLE NOT NULL,
    nll_words DOUBLE NOT NULL
);"""
        for table in ("bucket_tokens", "bucket_tokens_hour", "bucket_tokens_day")
    )
)

KEY = ("tenant", "model", "version", "cohort_key", "cohort_value", "bucket")
SCORE_KEY = (*KEY, "classes")
FEATURE_KEY = (*KEY, "feature")

_KEY_FIELDS = [
    ("tenant", pa.string()),
    ("model", pa.string()),
    ("version", pa.string()),
    ("cohort_key", pa.string()),
    ("cohort_value", pa.string()),
    ("bucket", pa.timestamp("us", tz="UTC")),
]

SCORE_SCHEMA = pa.schema(
    [
        *_KEY_FIELDS,
        ("classes", pa.list_(pa.string())),
        ("delta", pa.bool_()),
        ("n_predictions", pa.int64()),
        ("score_hist", pa.list_(pa.uint32())),
        ("n_labelled", pa.int64()),
        ("lag_bin", pa.list_(pa.uint16())),
        ("lag_count", pa.list_(pa.uint32())),
        *((f.name, f.type) for f in SCORE_FIELDS),  # a ScoreStats row (stats.codec)
        ("est_n", pa.int64()),
        ("est_weight", pa.float64()),
        ("est_var", pa.float64()),
        *((name, pa.list_(pa.float64())) for name in ESTIMATE_LISTS),
    ]
)
TOKEN_SCHEMA = pa.schema(
    [
        *_KEY_FIELDS,
        ("delta", pa.bool_()),
        *((name, pa.int64() if name in TOKEN_COUNTS else pa.float64()) for name in TOKEN_SUMS),
    ]
)
FEATURE_SCHEMA = pa.schema(
    [
        *_KEY_FIELDS,
        ("feature", pa.string()),
        ("delta", pa.bool_()),
        ("counts", pa.list_(pa.uint32())),
    ]
)


@dataclass(frozen=True)
class MonitorConfig:
    """How much the buckets keep (see the module docstring).

    Attributes:
        cohort_cap: values per cohort key of a model with their own buckets.
        cohort_features: also keep feature histograms per cohort (costly:
            features x cohorts rows per minute).
        max_features: monitored features per model (the first seen, by name).
        learn_after: values of a feature seen before its bins are fixed from
            them (until then it is not histogrammed; then everything stored is).
        numeric_bins: quantile bins of a numeric feature.
        top_k: categories of a categorical feature (the rest is OTHER).
        fold_rows: events folded per transaction.
        eps: the clip policy of the log loss of folded events (as ``ScoreStats(eps=)``).
        cohort_crossings: multi-key cohorts (:mod:`~xebench.store.crossings`): lists
            of 2-3 cohort keys (at most 8 lists); a prediction with every key of one
            is also folded under the key ``"k1,k2"`` and the value ``"v1,v2"``.

    What the buckets hold is fixed when events are folded: a changed cap, feature
    setting or crossing applies to the events folded after it (and to all of them
    after :meth:`~xebench.store.EventStore.rebuild_buckets`).

    Example:
        >>> MonitorConfig(cohort_cap=20).cohort_cap
        20
        >>> MonitorConfig(cohort_crossings=[["region", "device"]]).cohort_crossings
        (('region', 'device'),)
    """

    cohort_cap: int = 100
    cohort_features: bool = False
    max_features: int = 50
    learn_after: int = 1000
    numeric_bins: int = 50
    top_k: int = 30
    fold_rows: int = 200_000
    eps: float = DEFAULT_EPS
    cohort_crossings: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cohort_crossings", check_crossings(self.cohort_crossings))
