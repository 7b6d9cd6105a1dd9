"""Heap memory back to the system after large work, so the resident size follows the load.

The Python objects of a large body are freed once its table is built (and the
table once it is committed), but glibc's allocator keeps the pages -- one arena
per thread -- and the resident size would stay at its high-water mark.
:func:`release_memory` trims them; the service calls it after a large body or
a large commit.

Arrow's buffers come from its own allocator, mimalloc in the pyarrow wheels,
which keeps freed pages for reuse: measured in process on 13 MB bodies of
10,000 events, the resident size after each write settled 60-90 MB higher
with mimalloc (400-432 MB) than with the system allocator (333-356 MB), and
its peaks were 450-484 MB against 416-438 MB. :func:`use_system_allocator`
gives the service process (and its validation workers) the system allocator,
so :func:`release_memory` returns Arrow's freed memory too.

Example:
    >>> release_memory()
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["LARGE", "release_memory", "use_system_allocator"]

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


def use_system_allocator() -> None:
    """Make pyarrow allocate with the system allocator, for this whole process (see the
    module); the service calls it at start. A library user's process keeps its pool.

    Example:
        >>> import pyarrow as pa
        >>> before = pa.default_memory_pool()
        >>> use_system_allocator()
        >>> pa.default_memory_pool().backend_name
        'system'
        >>> pa.set_memory_pool(before)
    """
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
