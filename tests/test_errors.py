"""The exception tree: every exception class of the package is drawn in ``xebench.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable

import pytest

import xebench
from xebench import errors
from xebench.demo.stream import generate
from xebench.io.readers import read_chunks


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every public exception class defined in the package, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(xebench.__path__, "xebench."):
        if info.name == "xebench.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("xebench")
                and not name.startswith("_")
            ):
                found[value.__name__] = value
    return found


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the docstring and its parent in the drawing."""
    tree: dict[str, str | None] = {}
    stack: list[str] = []
    for line in errors.__doc__.splitlines():
        match = re.match(r"^ {4}((?:[│ ] {3})*)(?:[├└]── )?([A-Z]\w+)(?:\(\w+\))?\s{2,}", line)
        if not match:
            continue
        depth = len(match[1]) // 4 + (1 if "──" in line else 0)
        stack[depth:] = [match[2]]
        tree[match[2]] = stack[depth - 1] if depth else None
    return tree


CLASSES = _exception_classes()


def test_the_tree_counts_every_class_once() -> None:
    tree = _drawn_tree()
    assert tree["XebenchError"] is None
    assert set(tree) == set(CLASSES), set(tree) ^ set(CLASSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_class_derives_from_xebench_error_as_drawn(name: str) -> None:
    cls = CLASSES[name]
    assert issubclass(cls, errors.XebenchError)
    parent = _drawn_tree()[name]
    if parent is not None:
        xebench_bases = [b for b in cls.__bases__ if issubclass(b, errors.XebenchError)]
        assert [b.__name__ for b in xebench_bases] == [parent]
        # A standard base named beside the class in the drawing, e.g. ``(ValueError)``.
        drawn = re.search(rf"{name}\((\w+)\)", errors.__doc__)
        if drawn:
            assert drawn[1] in {b.__name__ for b in cls.__mro__}


def test_moved_classes_are_the_same_object_under_their_old_names() -> None:
    from xebench.client.sdk import ClientError
    from xebench.ingest.events import BatchError
    from xebench.ingest.files import IngestError
    from xebench.service.config import ConfigError
    from xebench.service.server import ServeError
    from xebench.service.writer import StoreUnavailable, WriterBusy
    from xebench.store import event_store

    assert ClientError is errors.ClientError is xebench.ClientError
    assert (BatchError, IngestError, ConfigError, ServeError) == (
        errors.BatchError, errors.IngestError, errors.ConfigError, errors.ServeError,
    )  # fmt: skip
    assert (WriterBusy, StoreUnavailable) == (errors.WriterBusy, errors.StoreUnavailable)
    assert event_store.StoreError is errors.StoreError
    assert event_store.StoreLockedError is errors.StoreLockedError


@pytest.mark.parametrize(
    "call",
    [
        lambda: generate(hours=-1),
        lambda: generate(rate_per_minute=0),
        lambda: list(read_chunks({"y": [1]}, ["y"], batch_rows=0)),
    ],
    ids=["hours", "rate_per_minute", "batch_rows"],
)
def test_bad_arguments_raise_the_tree_with_the_usual_message(call: Callable[[], object]) -> None:
    with pytest.raises(errors.InvalidInputError) as caught:
        call()
    assert isinstance(caught.value, ValueError)
    argument = caught.value.argument
    assert str(caught.value).startswith(f"{argument}: ") and "; got " in str(caught.value)
