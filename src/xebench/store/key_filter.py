"""A Bloom filter of 64-bit keys in a fixed number of bytes: the bounded half of identity.

:class:`KeyFilter` answers "might this key be stored?" with no false
negatives and a false-positive rate that grows with the keys added (about
``(1 - exp(-k n / m)) ** k`` for ``n`` keys in ``m`` bits with ``k`` hashes).
Its memory never grows: :mod:`xebench.store.fingerprints` pairs it with an
exact index of the recent keys and :mod:`xebench.store.writes` settles a
positive that is not recent with a lookup in the store, so a false positive
costs one lookup and never a wrong answer.

Why a plain (not blocked) Bloom filter: a key maps to ``k`` independent bit
positions (double hashing of a SplitMix64 mix of the key). Blocking the bits
into one 64-bit word would load one cache line per key instead of ``k`` but
costs ~10x the false-positive rate at 18 bits per key (measured for this
module: 2.6e-3 instead of 2.8e-4), and in NumPy the ``k`` passes, not the
cache misses, dominate (~0.5 us per key added either way).

Example:
    >>> keys = KeyFilter(1 << 12)
    >>> keys.add(np.array([3, 1], dtype=np.int64))
    >>> keys.contains(np.array([1, 2, 3], dtype=np.int64)).tolist()
    [True, False, True]
    >>> keys.nbytes, keys.count
    (4096, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["KeyFilter", "mix64"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S6 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(6)
_LOW6 = np.uint64(63)
_ONE = np.uint64(1)


def mix64(keys: NDArray[Any]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser of ``keys`` (as unsigned 64-bit): a bijection that spreads
    every input bit over every output bit.

    Example:
        >>> int(mix64(np.array([1], dtype=np.int64))[0])
        6238072747940578789
    """
    x = np.array(keys, dtype=np.int64, copy=True).view(np.uint64)
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


class KeyFilter:
    """A Bloom filter of int64 keys: ``nbytes`` of bits, ``hashes`` positions per key.

    The bit array is allocated zeroed and untouched, so a filter costs
    resident memory only as its pages are written (a small store touches a
    few pages; past ~100 keys per page every page is resident: the size is
    then flat). Keys cannot be removed; :meth:`clear` starts over (after a
    retention pass deleted many keys, the store rebuilds it).

    Args:
        nbytes: the size of the bit array (at least 64).
        hashes: bit positions per key (6: the best false-positive rate near
            12 bits per key, and within 2x of it from 9 to 17).

    Example:
        >>> keys = KeyFilter(1 << 11, hashes=6)  # 16 bits per key for 1,000 keys
        >>> keys.add(np.arange(1000, dtype=np.int64))
        >>> bool(keys.contains(np.arange(1000, dtype=np.int64)).all())
        True
        >>> absent = np.arange(10**6, 10**6 + 100_000, dtype=np.int64)
        >>> f"{keys.false_positive_rate:.1e}", f"{keys.contains(absent).mean():.1e}"
        ('8.3e-04', '9.5e-04')
    """

    def __init__(self, nbytes: int = 64 << 20, *, hashes: int = 6) -> None:
        if nbytes < 64 or hashes < 1:
            raise ValueError(
                f"KeyFilter: nbytes must be >= 64 and hashes >= 1; got {nbytes}, {hashes}"
            )
        self.hashes = hashes
        self._words: NDArray[np.uint64] = np.zeros(nbytes // 8, dtype=np.uint64)
        self._bits = np.uint64(self._words.size * 64)
        self.count = 0  # keys added (a key added twice counts twice)

    @property
    def nbytes(self) -> int:
        """Bytes of the bit array."""
        return int(self._words.nbytes)

    @property
    def false_positive_rate(self) -> float:
        """The expected share of absent keys that :meth:`contains` reports present."""
        k, bits = self.hashes, float(self._bits)
        return (1.0 - math.exp(-k * self.count / bits)) ** k

    def _positions(self, keys: Any) -> list[tuple[NDArray[np.intp], NDArray[np.uint64]]]:
        """Per hash, each key's (word, bit mask)."""
        h1 = mix64(keys)
        h2 = mix64(h1) | _ONE
        out = []
        for i in range(self.hashes):
            position = (h1 + np.uint64(i) * h2) % self._bits
            out.append(((position >> _S6).astype(np.intp), _ONE << (position & _LOW6)))
        return out

    def add(self, keys: Any) -> None:
        """Add ``keys`` (an int64 array)."""
        keys = np.asarray(keys, dtype=np.int64)
        if not keys.size:
            return
        words = self._words
        for word, mask in self._positions(keys):
            # A buffered |= keeps one of several keys that share a word: set the lost
            # bits again, unbuffered (rare: two of a batch's keys in one word).
            words[word] |= mask
            lost = (words[word] & mask) == 0
            if lost.any():
                np.bitwise_or.at(words, word[lost], mask[lost])
        self.count += int(keys.size)

    def contains(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: False means surely absent, True probably present."""
        keys = np.asarray(keys, dtype=np.int64)
        found = np.ones(keys.shape, dtype=bool)
        if not keys.size:
            return found
        for word, mask in self._positions(keys):
            found &= (self._words[word] & mask) != 0
        return found

    def clear(self) -> None:
        """Forget every key (a fresh, untouched bit array of the same size).

        Example:
            >>> keys = KeyFilter(64); keys.add(np.array([7])); keys.clear()
            >>> keys.contains(np.array([7])).tolist(), keys.count
            ([False], 0)
        """
        self._words = np.zeros(self._words.size, dtype=np.uint64)
        self.count = 0
