"""The DuckDB event store: schema, writes and idempotency, buckets, queries.

>>> from xebench.store import EventStore
>>> with EventStore(":memory:") as store:
...     store.models("default")
[]

The names load on first use: the event schema (:mod:`xebench.store.schema`)
is needed where events are validated -- the service's validation workers --
without DuckDB (~40 MB resident).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .event_store import EventBatch, EventStore, StoreError, StoreLockedError

__all__ = ["EventBatch", "EventStore", "StoreError", "StoreLockedError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(".event_store", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
