"""Heap memory back to the system after large work, so the resident size follows the load.

The Python objects of a large body are freed once its table is built (and the
table once it is committed), but glibc's allocator keeps the pages -- one arena
per thread -- and the resident size would stay at its high-water mark.
:func:`release_memory` trims them; the service calls it after a large body or
a large commit.

Example:
    >>> release_memory()
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["LARGE", "release_memory"]

#: Bytes of work (a body, a commit) after which freed memory is given back.
LARGE = 4 * 1024 * 1024


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    Example:
        >>> release_memory()
    """
    if _TRIM is not None:
        _TRIM(0)
