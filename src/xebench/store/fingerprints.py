"""Identity keys in bounded memory: exact recent keys, a filter of every key, and the
exact sorted index both are made of.

Idempotency without a database index. DuckDB's ART index on 1e7 keys outgrew a
256 MB memory limit (measured: "could not allocate block", it is not evictable)
and multi-column keys are not used for lookups, so the tables have no key. The
64-bit identity fingerprints -- predictions' ``fp`` and ``rfp`` and labels'
``fp`` -- are kept in memory instead, in bounded space
(:class:`IdentityIndex`):

- every stored key in a fixed-size Bloom filter (:class:`~xebench.store.key_filter.KeyFilter`,
  shared by the three kinds, each salted): "surely new" for almost every new key;
- the most recent keys, exactly (:class:`RecentKeys`, two generations of
  :class:`FingerprintIndex`): retries and labels for recent predictions are
  answered from memory;
- a key the filter reports but the recent index does not know is settled by
  a lookup in the store (:mod:`xebench.store.writes`): an old key, or a false
  positive. Measured on this machine: ~40-70 ms at 1e7 stored rows, ~5 ms at
  1e6 (a scan of the ``fp`` column with DuckDB's join filter), once per write
  call and only when such a key occurs.

A hit is only a candidate for duplicates: :mod:`xebench.store.writes` reads the
stored rows back and compares them on the exact identity.

Example:
    >>> index = FingerprintIndex(np.array([3, 1], dtype=np.int64))
    >>> index.contains(np.array([1, 2], dtype=np.int64)).tolist()
    [True, False]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from .key_filter import KeyFilter

__all__ = ["FingerprintIndex", "IdentityIndex", "RecentKeys", "as_int64", "sorted_unique"]

_SMALL = 1 << 16  # below this np.searchsorted is as fast as anything


def _member(haystack: NDArray[np.int64], needles: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Which of the sorted ``needles`` are in the sorted ``haystack``."""
    if not haystack.size or not needles.size:
        return np.zeros(needles.shape, dtype=bool)
    if haystack.size <= _SMALL:
        at = np.searchsorted(haystack, needles)
        np.minimum(at, haystack.size - 1, out=at)
        return haystack[at] == needles
    # A branchless binary search run for all needles at once: the loads of one step
    # are independent, so the CPU overlaps their cache misses; about 3x faster than
    # np.searchsorted on 1e7 keys (1.3 ms instead of 4.5 ms for 5,000 needles).
    base = np.zeros(needles.size, dtype=np.intp)
    size = haystack.size
    while size > 1:
        half = size >> 1
        probe = base + half
        np.copyto(base, probe, where=haystack[probe] <= needles)
        size -= half
    return haystack[base] == needles


def _merge(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Two sorted arrays into one sorted array."""
    if not b.size:
        return a
    if not a.size:
        return b
    out = np.concatenate([a, b])
    out.sort(kind="stable")  # timsort: finds the two sorted runs and merges them in O(n)
    return out


def _without(a: NDArray[np.int64], gone: NDArray[np.int64]) -> NDArray[np.int64]:
    """The sorted unique array ``a`` less the sorted unique keys ``gone``."""
    if not a.size or not gone.size:
        return a
    at = np.searchsorted(a, gone)
    inside = at < a.size
    at = at[inside]
    hit = a[at] == gone[inside]
    return np.delete(a, at[hit]) if hit.any() else a


def sorted_unique(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct keys (np.unique hashes first: 11 s instead of 0.7 s at 1e7 keys).

    Example:
        >>> sorted_unique(np.array([5, 1, 5], dtype=np.int64)).tolist()
        [1, 5]
    """
    keys = np.sort(keys)
    if keys.size > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def as_int64(keys: Any) -> NDArray[np.int64]:
    """Keys (an Arrow array, a NumPy array or a list) as a contiguous int64 array.

    Example:
        >>> as_int64(pa.chunked_array([[1, 2], [3]])).tolist()
        [1, 2, 3]
    """
    if isinstance(keys, pa.ChunkedArray | pa.Array):
        keys = keys.to_numpy()
    return np.ascontiguousarray(keys, dtype=np.int64)


class FingerprintIndex:
    """Exact membership of int64 fingerprints: a sorted array and a small sorted log.

    Keys are kept once each, sorted, in a main NumPy array; new keys are merged
    into a log array, which merges into the main array once it holds
    ``merge_at`` keys (a lookup searches both). Memory is 8 bytes per key; a
    merge into the main array briefly needs about 2.5 times the main array
    (a copy and timsort's buffer), and takes ~125 ms at 1e7 keys.

    Example:
        >>> index = FingerprintIndex(np.array([5, 1, 5], dtype=np.int64))
        >>> index.add(np.array([3, 1], dtype=np.int64))
        >>> index.contains(np.array([1, 2, 3, 5], dtype=np.int64)).tolist(), len(index)
        ([True, False, True, True], 3)
        >>> index.remove(np.array([5], dtype=np.int64))
        >>> index.contains(np.array([5, 3], dtype=np.int64)).tolist(), index.nbytes
        ([False, True], 16)
    """

    def __init__(self, keys: Any = None, *, merge_at: int = 1 << 18) -> None:
        self.merge_at = merge_at
        main = sorted_unique(as_int64(keys)) if keys is not None else np.empty(0, dtype=np.int64)
        self._main: NDArray[np.int64] = main
        self._log: NDArray[np.int64] = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._main.size + self._log.size)

    @property
    def nbytes(self) -> int:
        """Bytes held by the key arrays."""
        return int(self._main.nbytes + self._log.nbytes)

    def contains(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: is it in the index."""
        keys = as_int64(keys)
        if keys.size <= 1:
            return _member(self._main, keys) | _member(self._log, keys)
        # Sorted needles make consecutive searches touch the same cache lines.
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        found = _member(self._main, ordered) | _member(self._log, ordered)
        out = np.empty(keys.size, dtype=bool)
        out[order] = found
        return out

    def add(self, keys: Any) -> None:
        """Add ``keys``; keys already present (or repeated) are kept once."""
        new = sorted_unique(as_int64(keys))
        new = new[~(_member(self._main, new) | _member(self._log, new))]
        if not new.size:
            return
        log = _merge(self._log, new)
        if log.size >= self.merge_at:
            self._main, self._log = _merge(self._main, log), np.empty(0, dtype=np.int64)
        else:
            self._log = log

    def remove(self, keys: Any) -> None:
        """Forget ``keys`` (absent keys are ignored); used by retention."""
        gone = sorted_unique(as_int64(keys))
        self._main = _without(self._main, gone)
        self._log = _without(self._log, gone)


class RecentKeys:
    """The most recently added keys, exactly: at least the last ``capacity // 2``, at most
    ``capacity`` (two generations; when the young one is full, the old one is dropped).

    Memory is at most 8 bytes per key of ``capacity`` (plus a merge's transient copy).

    Example:
        >>> recent = RecentKeys(4)
        >>> for key in (1, 2, 3, 4, 5):
        ...     recent.add(np.array([key], dtype=np.int64))
        >>> recent.contains(np.array([1, 2, 3, 4, 5], dtype=np.int64)).tolist(), len(recent)
        ([False, False, True, True, True], 3)
    """

    def __init__(self, capacity: int = 1 << 20) -> None:
        if capacity < 2:
            raise ValueError(f"RecentKeys needs capacity >= 2; got {capacity}")
        self.capacity = capacity
        self._young = FingerprintIndex(merge_at=min(1 << 18, max(capacity // 8, 16)))
        self._old = FingerprintIndex()

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    @property
    def nbytes(self) -> int:
        """Bytes held by the key arrays."""
        return self._young.nbytes + self._old.nbytes

    def add(self, keys: Any) -> None:
        """Add ``keys`` to the young generation; rotate when it holds ``capacity // 2``."""
        self._young.add(keys)
        if len(self._young) >= self.capacity // 2:
            self._old, self._young = self._young, FingerprintIndex(merge_at=self._young.merge_at)

    def contains(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: is it among the recent keys."""
        return self._young.contains(keys) | self._old.contains(keys)

    def remove(self, keys: Any) -> None:
        """Forget ``keys`` (retention)."""
        self._young.remove(keys)
        self._old.remove(keys)


class IdentityIndex:
    """One kind of identity key: every key in a shared :class:`KeyFilter` (salted by
    kind), the recent ones exactly in :class:`RecentKeys`.

    :meth:`maybe` is False for a key never added (no false negatives); :meth:`recent`
    is True only for keys added among the last ``recent_keys`` (no false positives,
    fingerprints aside). A key with ``maybe`` and not ``recent`` needs the store.

    Example:
        >>> shared = KeyFilter(1 << 12)
        >>> index = IdentityIndex(shared, salt=1, recent_keys=2)
        >>> index.add(np.array([10], dtype=np.int64)); index.add(np.array([11], dtype=np.int64))
        >>> keys = np.array([10, 11, 12], dtype=np.int64)
        >>> index.maybe(keys).tolist(), index.recent(keys).tolist()
        ([True, True, False], [False, True, False])
        >>> IdentityIndex(shared, salt=2).maybe(keys).tolist()  # another kind: another salt
        [False, False, False]
    """

    def __init__(self, keys: KeyFilter, *, salt: int, recent_keys: int = 1 << 20) -> None:
        self.filter = keys
        self.salt = np.int64(salt)
        self.recent_keys = RecentKeys(recent_keys)

    @property
    def nbytes(self) -> int:
        """Bytes held by the recent keys (the filter is shared: see its own ``nbytes``)."""
        return self.recent_keys.nbytes

    def add(self, keys: Any) -> None:
        """Add stored ``keys`` to the filter and to the recent keys."""
        keys = as_int64(keys)
        self.filter.add(keys ^ self.salt)
        self.recent_keys.add(keys)

    def add_old(self, keys: Any) -> None:
        """Add stored ``keys`` to the filter only (loading a store: not recent)."""
        self.filter.add(as_int64(keys) ^ self.salt)

    def maybe(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: False when surely never added."""
        return self.filter.contains(as_int64(keys) ^ self.salt)

    def recent(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: True when among the recent keys."""
        return self.recent_keys.contains(keys)

    def remove(self, keys: Any) -> None:
        """Forget ``keys`` in the recent index (the filter cannot; :class:`KeyFilter`)."""
        self.recent_keys.remove(keys)
