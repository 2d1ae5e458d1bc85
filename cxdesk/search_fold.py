"""Search folding: the one form both a search's words and the searched text are compared in.

``fold`` makes case, accents and character width not matter, both ways: "zoe" finds "Zoë" and
"zoë" finds "Zoe", "muller" finds "Müller", "strasse" finds "Straße", fullwidth "ｅｘａｍｐｌｅ"
finds "example" and back. NFKC first (fullwidth and halfwidth forms, ligatures such as "ﬁ",
compatibility characters), then casefold ("ß" is "ss"), then the accents of Latin, Greek and
Cyrillic letters are dropped (NFKD, without the combining diacritical marks). Japanese keeps
its marks: the voiced sound marks of kana (が) are not accents, so "が" does not find "か", and
hiragana and katakana stay apart; 山田 finds 山田. The result is recomposed (NFC).

The ticket stores the folded form of its searched fields (``Ticket.search_fold``, written by
the model's insert and update hooks) and the list's search folds the query the same way.
"""

from __future__ import annotations

import re
import unicodedata

SEPARATOR = "\x1f"
"""Between the folded fields of ``Ticket.search_fold``: no query holds it, so no match spans
two fields."""

# The combining marks that are accents on letters: diacritical marks (and their extended and
# supplement blocks), marks for symbols, half marks. Not the kana voiced sound marks (U+3099-A).
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """``text`` with case, accents and width folded (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = _ACCENTS.sub("", unicodedata.normalize("NFKD", folded))
    return unicodedata.normalize("NFC", stripped)


def fold_fields(*fields: str | None) -> str:
    """The folded form of several fields, kept apart by ``SEPARATOR``."""
    return SEPARATOR.join(fold(field or "") for field in fields)


def fold_query(text: str) -> str:
    """A search's words folded, without the separator (a match stays in one field)."""
    return fold(text.strip()).replace(SEPARATOR, "")
