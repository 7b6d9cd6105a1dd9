"""Checks on generated HTML shared by the report tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*(https?:)?//", re.IGNORECASE)


class _Collector(HTMLParser):
    """Collects tags, attributes and inline styles; script bodies stay opaque data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.loads: list[str] = []  # anything fetched from elsewhere, even a local file
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in {"src", "srcset", "poster"} or (tag == "link" and name == "href"):
                self.loads.append(f"<{tag} {name}={value!r}>")
            linking = name in {"src", "href", "action", "data", "poster", "srcset"}
            if value and linking and _EXTERNAL.match(value):
                self.external.append(f"<{tag} {name}={value!r}>")
            if value and name == "style" and _CSS_URL.search(value):
                self.external.append(f"<{tag} style={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data: str) -> None:
        if self._in_style and _CSS_URL.search(data):
            self.external.append("<style> url(...)")


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def external_references(page: str) -> list[str]:
    """Every attribute or stylesheet in ``page`` that would load something remote."""
    return parse(page).external
