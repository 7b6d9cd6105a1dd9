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
its peaks were 450-484 MB against 416-438 MB. :func:`configure_allocators`
gives the service process (and its validation workers) the system allocator,
so :func:`release_memory` returns Arrow's freed memory too, and keeps glibc
from holding a large body's freed buffers in its heap.

Example:
    >>> release_memory()
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["LARGE", "configure_allocators", "release_memory"]

#: Bytes of work (a body, a commit) after which freed memory is given back.
LARGE = 4 * 1024 * 1024


def _glibc(name: str) -> Callable[..., int] | None:
    """The C library's function ``name``; None when it has none (not glibc: a no-op)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _glibc("malloc_trim")
_MALLOPT = _glibc("mallopt")


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    Example:
        >>> release_memory()
    """
    if _TRIM is not None:
        _TRIM(0)


#: glibc's ``mallopt`` parameters (malloc.h).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def configure_allocators(*, mmap_threshold: int = 128 * 1024, arenas: int = 2) -> None:
    """Set this process's allocators for a server whose memory must follow its load (see
    the module); the service calls it at start, before its threads. A library user's
    process keeps its own settings.

    - pyarrow allocates with the system allocator instead of mimalloc;
    - glibc serves every block of ``mmap_threshold`` bytes or more with its own
      mapping, returned to the system when freed. By default glibc raises that
      threshold to the size of each large block freed, up to 32 MiB, after which a
      large body's buffers come from the heap and stay there: 20 MB bodies took the
      server to 535-555 MB with the default, 488 MB with a fixed 128 KiB;
    - at most ``arenas`` glibc arenas (one per thread by default, each keeping its
      own freed memory): 470 MB in the same run.

    Example:
        >>> import pyarrow as pa
        >>> before = pa.default_memory_pool()
        >>> configure_allocators()
        >>> pa.default_memory_pool().backend_name
        'system'
        >>> pa.set_memory_pool(before)
    """
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    if _MALLOPT is not None:
        _MALLOPT(_M_MMAP_THRESHOLD, mmap_threshold)
        _MALLOPT(_M_ARENA_MAX, arenas)
