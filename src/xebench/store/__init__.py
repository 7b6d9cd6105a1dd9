"""The DuckDB event store: schema, writes and idempotency, buckets, queries.

>>> from xebench.store import EventStore
>>> with EventStore(":memory:") as store:
...     store.models("default")
[]
"""

from .event_store import EventBatch, EventStore, StoreError, StoreLockedError

__all__ = ["EventBatch", "EventStore", "StoreError", "StoreLockedError"]
