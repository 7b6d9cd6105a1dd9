"""Hypothesis strategies shared by the differential tests of the fast paths
(``tests/ingest/test_fast.py``, ``tests/ingest/test_fast_labels.py``): text of
every kind and timestamps in every layout, valid and not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

TEXT = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["eu", "", "a\u202eb", "\x7f", "\x85", "tab\there", 'q"uote', "b\\s", "a :b"]),
    st.just("x" * 257),
)


def _stamp(moment: datetime, style: int) -> str:
    if style == 0:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == 1:
        return moment.isoformat()
    if style == 2:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 3:
        return moment.isoformat().replace("T", " ")
    if style == 4:
        return moment.isoformat().lower()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@st.composite
def stamps(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return None
    if kind == 1:
        return draw(
            st.sampled_from(
                [
                    "2026-02-30T00:00:00Z",
                    "2024-02-29T23:59:59Z",
                    "2026-01-01T24:00:00Z",
                    "2026-01-01T00:00:60Z",
                    "2026-13-01T00:00:00Z",
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-01:00",
                    "1969-12-31T23:59:59Z",
                    "1970-01-01T00:00:00Z",
                    "2026-01-01T00:00:00",
                    "2026-01-01T00:00:00.1234567Z",
                    "2026-01-01T00:00:00+25:00",
                    "2026-01-01T00:00:00+05:60",
                    "2026-01-01T00:00:00-00:00",
                    "2026-06-01T13:00:00Z",
                    "2026-06-01T13:00:00.000001Z",
                    1767225600,
                    "yesterday",
                ]
            )
        )
    offset = timedelta(minutes=draw(st.integers(-18 * 60, 18 * 60)))
    moment = draw(
        st.datetimes(
            min_value=datetime(1965, 1, 1),
            max_value=datetime(2026, 6, 1, 14),
            timezones=st.just(UTC),
        )
    )
    moment = moment.astimezone(timezone(offset))
    return _stamp(moment, draw(st.integers(0, 5)))
