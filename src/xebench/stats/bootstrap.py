"""Deterministic Poisson bootstrap weights, so bootstrap statistics merge.

The classic bootstrap resamples a whole data set at once, which a stream, a
time bucket or a Spark partition cannot do. The Poisson bootstrap gives every
event, in every replicate ``b``, an independent weight ``k ~ Poisson(1)``
(Chamandy et al., 2012, "Estimating uncertainty for massive data streams").
Here the weights are a pure function of the event's key (its id, or its row
index when there is no id), the replicate and a seed: the same event gets the
same weights wherever and in whatever order it is processed, so replicate sums
from partitions add up to exactly the replicate sums of one pass.

The weights come from a counter-based generator: ``splitmix64`` of the key
and seed, then two multiply-xorshift rounds of (key hash, pair of
replicates) whose two 16-bit halves are mapped to Poisson(1) by comparing
with the distribution function quantized to 2**-16 (each probability within
1.5e-5 of Poisson(1); weights stop at 7, which Poisson(1) exceeds with
probability 1e-5). Up to 8192 replicates.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidInputError

__all__ = [
    "DEFAULT_REPLICATES",
    "MAX_REPLICATES",
    "event_hashes",
    "event_keys",
    "poisson_weights",
    "weights_from_hashes",
]

#: Replicates used when the bootstrap is switched on without a number.
DEFAULT_REPLICATES = 200
#: Two replicates per 32-bit salt.
MAX_REPLICATES = 8192

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX32_1 = np.uint32(0x7FEB352D)
_MIX32_2 = np.uint32(0x846CA68B)
#: One odd constant per pair of replicates (Weyl sequence of the golden ratio).
_SALTS = (np.arange(1, MAX_REPLICATES // 2 + 1, dtype=np.uint64) * np.uint64(0x9E3779B9)).astype(
    np.uint32
)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: u16 >= _THRESHOLDS[j] counts one more event: P(k <= j) = Poisson(1) CDF.
#: Weights stop at 7: P(k >= 8) = 1.0e-5 is below the 2**-16 resolution.
#: The CDF is summed here: importing scipy.special for it would double ``import xebench``.
_POISSON_1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(7)])
_THRESHOLDS = np.round(_POISSON_1_CDF * 65536).astype(np.uint16)


def _splitmix64(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finalizer, elementwise (wrapping uint64 arithmetic)."""
    z = values.copy()
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def _stable_key(value: Any) -> int:
    digest = hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def event_keys(
    ids: ArrayLike | Sequence[Any] | None, n_rows: int, row_offset: int
) -> NDArray[np.uint64]:
    """A uint64 key per event: its integer id, a stable hash of any other id,
    or its row index ``row_offset + i`` when there are no ids.

    Non-integer ids are hashed with BLAKE2b, not Python's ``hash`` (which is
    salted per process), so keys agree across machines.

    Example:
        >>> event_keys(None, 3, row_offset=10).tolist()
        [10, 11, 12]
        >>> first, alone = event_keys(["a", "b"], 2, 0), event_keys(["a"], 1, 5)
        >>> bool(first[0] == alone[0])  # the id decides, not the position
        True
    """
    if ids is None:
        return np.arange(row_offset, row_offset + n_rows, dtype=np.uint64)
    array = np.asarray(ids)
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise InvalidInputError(
            "ids", f"must hold one id per row ({n_rows} rows)", value=f"shape {array.shape}"
        )
    if array.dtype.kind in "iu":
        return array.astype(np.int64).view(np.uint64)
    return np.fromiter((_stable_key(v) for v in array.tolist()), dtype=np.uint64, count=n_rows)


def event_hashes(
    keys: NDArray[np.uint64], seed: int = 0
) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """The two 32-bit halves of each event's seeded hash (computed once per chunk)."""
    seed_mix = _splitmix64(np.array([seed], dtype=np.uint64) + _GOLDEN)
    base = _splitmix64(keys ^ seed_mix)
    return base.astype(np.uint32), (base >> np.uint64(32)).astype(np.uint32)


def weights_from_hashes(
    low: NDArray[np.uint32], high: NDArray[np.uint32], replicates: int
) -> NDArray[np.uint8]:
    """Poisson(1) weights, ``(len(low), replicates)``, from :func:`event_hashes`."""
    pairs = -(-replicates // 2)  # two 16-bit draws per 32-bit hash
    # Per (event, pair of replicates): two multiply-xorshift rounds over 32-bit
    # lanes (native SIMD multiplies, where NumPy emulates 64-bit ones), with the
    # high half of the event hash folded in so both halves tell events apart.
    mixed = low[:, np.newaxis] ^ _SALTS[np.newaxis, :pairs]
    mixed *= _MIX32_1
    mixed ^= mixed >> np.uint32(15)
    mixed *= _MIX32_2
    mixed ^= high[:, np.newaxis]
    mixed ^= mixed >> np.uint32(16)
    uniform = mixed.astype("<u4", copy=False).view("<u2")[:, :replicates]
    # k = the number of thresholds the uniform reaches: 7 SIMD compares beat
    # any table lookup or search (measured in benchmarks/bench_stats.py).
    weights = np.greater_equal(uniform, _THRESHOLDS[0]).view(np.uint8)
    reached = np.empty(uniform.shape, dtype=np.bool_)
    for threshold in _THRESHOLDS[1:]:
        np.greater_equal(uniform, threshold, out=reached)
        weights += reached.view(np.uint8)
    return weights


def poisson_weights(keys: NDArray[np.uint64], replicates: int, seed: int = 0) -> NDArray[np.uint8]:
    """Poisson(1) bootstrap weights, shape ``(len(keys), replicates)``.

    A pure function of (key, replicate, seed): the same key always gets the
    same row of weights.

    Example:
        >>> w = poisson_weights(np.arange(20_000, dtype=np.uint64), 200)
        >>> w.shape, round(float(w.mean()), 2), round(float(w.var()), 2)
        ((20000, 200), 1.0, 1.0)
        >>> bool((poisson_weights(np.array([7], dtype=np.uint64), 5) == w[7, :5]).all())
        True
    """
    if not 0 <= replicates <= MAX_REPLICATES:
        raise InvalidInputError("replicates", f"must be in [0, {MAX_REPLICATES}]", value=replicates)
    return weights_from_hashes(*event_hashes(keys, seed), replicates)
