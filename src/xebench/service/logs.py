"""Structured logging: one JSON object per line, for the service and its tools.

Request bodies and tokens are never passed to a logger, so they never reach
the logs; what a line carries is its message and the ``extra`` fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and the ``extra`` fields.

    Request bodies and tokens are never passed to the loggers, so they never
    reach the logs.

    Example:
        >>> record = logging.LogRecord("xebench", logging.INFO, "", 0, "hello", None, None)
        >>> record.status = 200
        >>> line = json.loads(JsonFormatter().format(record))
        >>> line["message"], line["status"]
        ('hello', 200)
    """

    # uvicorn adds ``color_message``, the message with terminal colour codes.
    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
        "message",
        "asctime",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime


def configure_logging(level: str = "info") -> None:
    """Structured JSON log lines on stderr for xebench and uvicorn.

    Example:
        >>> configure_logging("warning")
        >>> logging.getLogger("xebench").level == logging.WARNING
        True
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("xebench", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
