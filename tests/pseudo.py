"""Screens in the pseudo-language (``cxdesk.i18n.PSEUDO``): every string that went through the
catalog is drawn as ``⟦...⟧``, so English words left outside brackets are text that did not.

    def test_the_queues_screen_speaks_only_catalog_text(engine, pseudo_language):
        ... run the screen ...
        assert untranslated(drawn_text(app), data=["Ada Lovelace", "EXP-1"]) == []

``data`` lists what the screen shows from the desk (names, keys, team names): not the
catalog's. Words of one or two letters are not counted (keys such as ``^q``, units).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache

import pytest

from cxdesk.i18n import PSEUDO, use_language

_INNERMOST = re.compile(r"⟦[^⟦⟧\n]*⟧")
"""A catalog string holding no other: removed first, so one whose placeholder was filled with
another (``_("{refused}: {reason}").format(refused=_("Not saved"), ...)``) is removed too."""
_BRACKETED = re.compile(r"⟦[^⟧\n]*(?:⟧|$)|^[^⟦\n]*⟧", re.MULTILINE)
"""A catalog string, also when cut at the line's end or begun on the line before (wrapped)."""
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]{2,}")


def untranslated(drawn: str, data: Iterable[str] = ()) -> list[str]:
    """The words of ``drawn`` that are neither in a catalog string nor in ``data``."""
    text, before = drawn, ""
    while text != before:
        before, text = text, _INNERMOST.sub(" ", text)
    text = _BRACKETED.sub(" ", text)
    for shown in sorted(data, key=len, reverse=True):
        text = text.replace(shown, " ")
    return _WORD.findall(text)


def outside_catalog(drawn: str, data: Iterable[str] = ()) -> list[str]:
    """The bracketed texts of ``drawn`` that are no catalog string (placeholders filled) nor
    in ``data``: text given to ``_`` that extraction missed (a ``_()`` inside an f-string),
    drawn in brackets all the same. Texts cut at the line's end, and signs, are not looked at."""
    known = _catalog_patterns()
    found, text, before = [], drawn, ""
    while text != before:
        for match in _INNERMOST.finditer(text):
            inner = match.group()[1:-1]
            if not _WORD.search(inner) or inner.strip() in data:
                continue  # a sign ("#"), or the desk's own text
            if not any(pattern.fullmatch(inner) for pattern in known):
                found.append(inner)
        before, text = text, _INNERMOST.sub(" ", text)
    return found


@cache
def _catalog_patterns() -> tuple[re.Pattern[str], ...]:
    """Each catalog string as a pattern, its ``{placeholders}`` matching anything."""
    from cxdesk.i18n import LOCALE_DIR

    template = (LOCALE_DIR / "cxdesk.pot").read_text(encoding="utf-8")
    ids: list[str] = []
    for block in re.findall(r'^msgid(?:_plural)? ((?:"(?:[^"\\]|\\.)*"\n?)+)', template, re.M):
        text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))
        if text:
            ids.append(text.encode().decode("unicode_escape").encode("latin-1").decode())
    return tuple(
        re.compile(".*".join(re.escape(part) for part in re.split(r"\{\w*\}", text)), re.S)
        for text in ids
    )


@pytest.fixture
def pseudo_language() -> Iterator[None]:
    """The process speaks the pseudo-language for the test (English again after it)."""
    use_language(PSEUDO)
    try:
        yield
    finally:
        use_language(None)
