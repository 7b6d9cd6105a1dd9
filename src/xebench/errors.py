"""Exceptions raised by xebench.

The hierarchy is small on purpose; catch ``ValueError`` if you only care that
the input was bad, or :class:`XebenchError` for anything xebench raised::

    XebenchError                      base of everything xebench raises
    └── InvalidInputError(ValueError) an argument broke a rule; carries
        │                             ``argument``, ``row`` and ``value``
        └── DataError                 a value in a file or table broke a rule;
                                      also carries ``source`` and ``column``

Errors carry structured fields so that the HTTP service and the CLI can report
them as JSON (field path, row) without parsing the message.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataError", "InvalidInputError", "XebenchError"]


class XebenchError(Exception):
    """Base class of every exception raised on purpose by xebench.

    Example:
        >>> issubclass(InvalidInputError, XebenchError)
        True
    """


class InvalidInputError(XebenchError, ValueError):
    """An argument broke a documented rule.

    The message always has the same shape: the argument, the rule, and, when
    the problem is in one element, the first offending row and its value.

    Attributes:
        argument: name of the offending argument, e.g. ``"y_prob"``.
        rule: the broken precondition, in words.
        row: index of the first offending row (or bin), or ``None``.
        value: the offending value, or ``None``.

    Example:
        >>> err = InvalidInputError("y_prob", "values must be in [0, 1]", row=3, value=1.3)
        >>> str(err)
        'y_prob: values must be in [0, 1]; row 3 is 1.3'
        >>> isinstance(err, ValueError), err.row
        (True, 3)
    """

    def __init__(
        self,
        argument: str,
        rule: str,
        *,
        row: int | None = None,
        value: Any = None,
        where: str | None = None,
        row_name: str = "row",
    ) -> None:
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()  # NumPy scalar -> Python scalar, for a readable repr
        self.argument = argument
        self.rule = rule
        self.row = row
        self.value = value
        message = f"{argument}: {rule}"
        if row is not None:
            place = f"{row_name} {row}" if where is None else f"{row_name} {row}, {where}"
            message += f"; {place} is {value!r}"
        elif value is not None:
            message += f"; got {value!r}"
        super().__init__(message)


class DataError(InvalidInputError):
    """A value read from a file, DataFrame or table broke a rule.

    The message names the source (file path or table kind), the column, the
    1-based data row (the header is not counted) and the value, on one line,
    so that the CLI can print it as is.

    Attributes:
        source: file path or a description such as ``"<pandas.DataFrame>"``.
        column: the offending column, or ``None`` for file-level problems.

    Example:
        >>> err = DataError("p", "values must be in [0, 1]", row=3, value=1.3,
        ...                 source="preds.csv", column="p")
        >>> str(err)
        "preds.csv: column 'p': values must be in [0, 1]; row 3 is 1.3"
        >>> str(DataError("data", "is empty", source="empty.csv"))
        'empty.csv: data: is empty'
    """

    def __init__(
        self,
        argument: str,
        rule: str,
        *,
        row: int | None = None,
        value: Any = None,
        source: str | None = None,
        column: str | None = None,
    ) -> None:
        self.source = source
        self.column = column
        where = f"column {column!r}" if column is not None else argument
        super().__init__(where, rule, row=row, value=value)
        self.argument = argument
        if source is not None:
            self.args = (f"{source}: {self.args[0]}",)
