"""Exceptions raised by xebench: the whole tree, in one module.

Catch ``ValueError`` if you only care that the input was bad, or
:class:`XebenchError` for anything xebench raised on purpose::

    XebenchError                        base of everything xebench raises
    ├── InvalidInputError(ValueError)   an argument broke a rule; carries
    │   │                               ``argument``, ``row`` and ``value``
    │   └── DataError                   a value in a file or table broke a rule;
    │                                   also carries ``source`` and ``column``
    ├── IngestError(ValueError)         a row of an imported file cannot be stored
    │                                   (``source``, ``row``, ``field``, ``column``)
    ├── ConfigError(ValueError)         the service configuration is invalid;
    │                                   the message names the key
    ├── BatchError                      an HTTP body or batch refused whole
    │                                   (``status``, one entry per bad event)
    ├── Rejected                        a target refused a batch during an import
    │                                   (:mod:`xebench.ingest.targets`; becomes an
    │                                   IngestError)
    ├── Unsure                          a fast path declines a batch
    │                                   (:mod:`xebench.ingest.columnwise`; caught
    │                                   by the fast paths: the per-event path decides)
    ├── StoreError(OSError)             the event store cannot be opened or used
    │   └── StoreLockedError            another process holds the database file
    ├── WriterBusy                      the write queue is full (HTTP 429)
    ├── StoreUnavailable                the store is being reopened (HTTP 503)
    ├── ServeError                      the service cannot start as asked
    ├── LooksLikeLabelsWarning(UserWarning)  a warning: a probability
    │                                   column holds only 0 and 1 (``column``)
    ├── XEBWarning(RuntimeWarning)      a warning: a quantum XEB fidelity of no
    │                                   shots is NaN (:mod:`xebench.metrics.xeb`)
    ├── TokenizerMismatchWarning(UserWarning)  a warning: language models cut the
    │                                   same texts into different numbers of tokens
    ├── ZeroProbabilityWarning(RuntimeWarning)  a warning: a language model gave
    │                                   an observed token probability 0
    ├── UndefinedMetricWarning(RuntimeWarning)  a warning: a ranking metric
    │                                   needs both classes (AUC of one class is NaN)
    ├── Fail                            a usage error of the ``xebench`` command
    │                                   (:mod:`xebench.cli.app`; exit code 2)
    └── ClientError                     the server refused a request for good
                                        (``status``, ``body``)

Each class is importable from here and from the module that raises it
(``xebench.service.config.ConfigError`` is this ``ConfigError``). Errors carry
structured fields so that the HTTP service and the CLI can report them as
JSON (field path, row) without parsing the message. Private signals (a
leading underscore) are caught inside the module that raises them and are
not part of the tree.

Rows are counted from 1, in Python and on the command line alike: row 1 is
the first element of an array argument (``y_prob[0]``) or the first data row
of a file or table (its header is not counted), and ``err.row`` holds the
number the message shows. Validators locate offenders by 0-based position and
pass it as ``index=``; the error turns it into the row number. Columns and
bins of a distribution keep their 0-based position (``column 0`` is the
first class, as in ``y_prob[:, 0]``).

    >>> issubclass(StoreLockedError, StoreError) and issubclass(StoreError, OSError)
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "BatchError",
    "ClientError",
    "ConfigError",
    "DataError",
    "IngestError",
    "InvalidInputError",
    "LooksLikeLabelsWarning",
    "ServeError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailable",
    "TokenizerMismatchWarning",
    "UndefinedMetricWarning",
    "WriterBusy",
    "XEBWarning",
    "XebenchError",
    "ZeroProbabilityWarning",
]


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
        row: number of the first offending row, counted from 1 (or a bin's
            0-based position), or ``None``.
        value: the offending value, or ``None``.

    Pass ``index=`` (the 0-based position of the offender in the argument)
    or ``row=`` (a row number already counted from 1), not both.

    Example:
        >>> err = InvalidInputError("y_prob", "values must be in [0, 1]", row=3, value=1.3)
        >>> str(err)
        'y_prob: values must be in [0, 1]; row 3 is 1.3'
        >>> isinstance(err, ValueError), err.row
        (True, 3)
        >>> InvalidInputError("y_prob", "must be finite", index=0, value=float("nan")).row
        1
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
        index: int | None = None,
    ) -> None:
        if index is not None:
            row = index + 1
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


class IngestError(XebenchError, ValueError):
    """A row (or a batch) that cannot be imported; the message is one line.

    Attributes:
        source: the file.
        row: 1-based data row of the bad event, or None (a whole batch failed).
        field: JSON pointer of the bad field within the event (``/probabilities/1``).
        column: the file column that field came from, or None.
        message: what is wrong.
        stored_before: first row of ``source`` that was not stored (rows
            before it, and earlier files, are stored).
        summary: what was imported before the error (an
            :class:`~xebench.ingest.files.ImportSummary`), or None.

    Example:
        >>> error = IngestError("preds.csv", 17, "/probabilities", "must be in [0, 1]; got 1.3",
        ...                     note="(nothing was stored)")
        >>> str(error)
        'preds.csv: row 17: /probabilities: must be in [0, 1]; got 1.3 (nothing was stored)'
    """

    def __init__(
        self,
        source: str,
        row: int | None,
        field: str | None,
        message: str,
        *,
        column: str | None = None,
        note: str = "",
        stored_before: int = 1,
        summary: Any = None,
    ) -> None:
        self.source, self.row, self.field, self.column = source, row, field, column
        self.message, self.stored_before, self.summary = message, stored_before, summary
        where = f"{source}: row {row}: " if row is not None else f"{source}: "
        if field:
            parts = field.strip("/").split("/")
            implied = column == parts[0] or (
                parts[0] in ("cohort", "features") and len(parts) > 1 and column == parts[1]
            )
            shown = "" if not column or implied else f" (column {column!r})"
            if column and column.startswith("--"):
                shown = f" ({column})"
            where += f"{field}{shown}: "
        elif column:
            where += f"column {column!r}: "
        super().__init__(f"{where}{message}" + (f" {note}" if note else ""))


class ConfigError(XebenchError, ValueError):
    """The configuration file or environment is invalid; the message names the key.

    Example:
        >>> str(ConfigError("tokens[0].scopes: unknown scope 'write'"))
        "tokens[0].scopes: unknown scope 'write'"
    """


class BatchError(XebenchError):
    """A request body or batch that cannot be accepted; nothing of it is stored.

    Attributes:
        status: the HTTP status it maps to (400 malformed, 413 too large,
            415 wrong media type or encoding, 422 invalid events).
        detail: one sentence for humans.
        errors: one entry per bad event: ``{"index", "field", "message"}``,
            ``field`` a JSON pointer into the body (``/3/probabilities/1``).

    Example:
        >>> err = BatchError(422, "1 of 2 events is invalid",
        ...                  [{"index": 1, "field": "/1/model", "message": "required"}])
        >>> str(err), err.status
        ('1 of 2 events is invalid', 422)
    """

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the error response.

        Example:
            >>> BatchError(413, "too large").to_dict()
            {'detail': 'too large', 'errors': []}
        """
        return {"detail": self.detail, "errors": self.errors}


class StoreError(XebenchError, OSError):
    """The event store cannot be opened or used; the message says why.

    It is also an :class:`OSError`, so code that reports unusable files (the
    CLI) reports an unusable database the same way.

    Example:
        >>> error = StoreError("cannot open event store x.duckdb: not a DuckDB file")
        >>> isinstance(error, OSError), str(error)
        (True, 'cannot open event store x.duckdb: not a DuckDB file')
    """


class StoreLockedError(StoreError):
    """Another process holds the database file: DuckDB allows one writing process.

    Also raised when this process already has the file open in another
    :class:`EventStore` (DuckDB would share the database between the two,
    each with its own fingerprint index).

    Attributes:
        path: the database file.
        pid: the holding process, when DuckDB names it.
        command: its command line (from ``/proc``), or the program DuckDB names.

    Example:
        >>> error = StoreLockedError("/data/x.duckdb", 4242, "xebench serve")
        >>> error.pid, str(error)
        (4242, 'database /data/x.duckdb is in use by another process (PID 4242: xebench serve):
         DuckDB allows one writing process; stop that process or pass another --db')
    """

    def __init__(self, path: str | Path, pid: int | None, command: str | None = None) -> None:
        self.path = path
        self.pid = pid
        self.command = command
        if pid is not None and pid == os.getpid():
            super().__init__(
                f"database {path} is already open in this process (PID {pid}): close that "
                "EventStore first (two would share the file with separate indexes)"
            )
            return
        holder = "PID unknown" if pid is None else f"PID {pid}"
        if command:
            holder += f": {command}"
        super().__init__(
            f"database {path} is in use by another process ({holder}): DuckDB allows one "
            "writing process; stop that process or pass another --db"
        )


class WriterBusy(XebenchError):
    """The writer queue is full, or the server at capacity (``reason``): retry after
    ``retry_after`` seconds (HTTP 429).

    Example:
        >>> WriterBusy(1.0).retry_after
        1.0
    """

    def __init__(self, retry_after: float, reason: str = "the write queue is full") -> None:
        super().__init__(f"{reason}; retry in {retry_after:g} s")
        self.retry_after = retry_after


class StoreUnavailable(XebenchError):
    """The store failed and is being reopened: retry after ``retry_after`` seconds (HTTP 503).

    Example:
        >>> StoreUnavailable("disk full", 5.0).retry_after
        5.0
    """

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(f"the event store is unavailable ({reason}); retry in {retry_after:g} s")
        self.reason = reason
        self.retry_after = retry_after


class ServeError(XebenchError):
    """The service cannot start as asked; the message says what to do instead.

    Example:
        >>> str(ServeError("--workers 2: one process writes the store"))
        '--workers 2: one process writes the store'
    """


class ClientError(XebenchError):
    """The server refused a request for good, or it could not be delivered in time.

    Raised by :meth:`Client.send_predictions` and :meth:`Client.send_labels`
    (the background delivery of ``log_*`` never raises; it counts and logs).

    Attributes:
        status: the HTTP status of the refusal, or of the last answer when the
            retries ran out (429, 503...), or ``None`` when no answer came at all.
        body: the answer's JSON (``{"detail", "errors"}`` for a 422), its text
            when it was not JSON, or ``None``.

    Example:
        >>> err = ClientError("HTTP 422: 1 of 1 events is invalid", status=422,
        ...                   body={"detail": "1 of 1 events is invalid", "errors": []})
        >>> err.status, str(err)
        (422, 'HTTP 422: 1 of 1 events is invalid')
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class XEBWarning(XebenchError, RuntimeWarning):
    """A quantum XEB fidelity cannot be estimated: no shots (the answer is NaN).

    Example:
        >>> issubclass(XEBWarning, RuntimeWarning)
        True
    """


class UndefinedMetricWarning(XebenchError, RuntimeWarning):
    """A metric is undefined on these labels (the answer is NaN).

    ROC AUC compares positives with negatives, so it needs both; average
    precision needs a positive. The kernel returns NaN and warns, as
    scikit-learn does; the statistics report ``None`` in JSON.

    Example:
        >>> issubclass(UndefinedMetricWarning, RuntimeWarning)
        True
    """


class LooksLikeLabelsWarning(XebenchError, UserWarning):
    """A probability column holds only 0 and 1: hard labels, not probabilities.

    Log loss scores such a column as a model that is certain, and every
    mistake costs ``-log(eps)``; the column was probably the labels or a
    thresholded prediction.

    Example:
        >>> str(LooksLikeLabelsWarning("p"))
        "column 'p' holds only 0 and 1: it looks like labels, not probabilities"
    """

    def __init__(self, column: str) -> None:
        super().__init__(
            f"column {column!r} holds only 0 and 1: it looks like labels, not probabilities"
        )
        self.column = column


class TokenizerMismatchWarning(XebenchError, UserWarning):
    """Two language models cut the same texts into different numbers of tokens.

    Their tokenizers differ, so per-token measures (perplexity, cross-entropy,
    bits per token) are not comparable between them; bits per byte (and byte
    or word perplexity) are, and ``xebench lm`` ranks by bits per byte.

    Attributes:
        models: the two models; ``n_texts``: texts whose token counts differ;
        ``n_paired``: texts compared; ``example``: ``(text_id, tokens, tokens)``.

    Example:
        >>> w = TokenizerMismatchWarning(("gpt", "llama"), 3, 10, ("t1", 5, 7))
        >>> str(w)  # doctest: +NORMALIZE_WHITESPACE
        "models 'gpt' and 'llama' have different token counts for 3 of 10 texts (text 't1':
        5 vs 7 tokens): their tokenizers differ, so per-token perplexity and cross-entropy
        are not comparable between them; the ranking uses bits per byte"
    """

    def __init__(
        self, models: tuple[str, str], n_texts: int, n_paired: int, example: tuple[str, int, int]
    ) -> None:
        text_id, a, b = example
        super().__init__(
            f"models {models[0]!r} and {models[1]!r} have different token counts for "
            f"{n_texts} of {n_paired} texts (text {text_id!r}: {a} vs {b} tokens): their "
            "tokenizers differ, so per-token perplexity and cross-entropy are not comparable "
            "between them; the ranking uses bits per byte"
        )
        self.models, self.n_texts, self.n_paired, self.example = models, n_texts, n_paired, example


class ZeroProbabilityWarning(XebenchError, RuntimeWarning):
    """A language model gave probability 0 (log-probability ``-inf``) to observed tokens.

    Its total NLL, bits per byte and perplexities are infinite (null in JSON)
    and it has no interval; comparisons with it have no p-value.

    Example:
        >>> str(ZeroProbabilityWarning("gpt", 2))
        "model 'gpt' gave probability 0 to 2 observed token(s): its bits per byte and
         perplexities are infinite"
    """

    def __init__(self, model: str, n_tokens: int) -> None:
        super().__init__(
            f"model {model!r} gave probability 0 to {n_tokens} observed token(s): its bits "
            "per byte and perplexities are infinite"
        )
        self.model, self.n_tokens = model, n_tokens
