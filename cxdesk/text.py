"""What text may hold, in one place: the rule for names and the rule for terminals.

- **Names** (a customer's, a user's, a team, queue, status, campaign, survey or workflow name, a
  tag) are one line of visible text: ``text_problem`` refuses control characters (CR, LF, tab,
  ESC, DEL, the C1 set such as CSI U+009B), the Unicode line and paragraph separators and the
  bidirectional overrides that make a name read as another. Multi-line text (a comment, a
  long answer) may hold line feeds and tabs and nothing else of these. Every store operation
  that takes a name checks it here, so the CLI, the TUI, imports and the web cannot disagree.
- **Terminals**: ``printable`` is what text looks like when it leaves for a terminal: the same
  characters shown as visible escapes (``\\x1b``), so stored customer text cannot clear the
  screen, set the clipboard (OSC 52) or rewrite a line (a bare CR). JSON output does not go
  through it: JSON escapes them itself, and scripts get the text exactly.

No Rich, no Textual: the store, the CLI and the screens all import this.
"""

from __future__ import annotations

import re

from cxdesk.errors import ValidationFailed
from cxdesk.i18n import _

_INVISIBLE = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_NOT_IN_NAMES = re.compile(f"[{_INVISIBLE}]")
_NOT_IN_LINES = re.compile(f"(?![\n\t])[{_INVISIBLE}]")
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escaped(character: str) -> str:
    """A character as its visible escape: ``\\n``, ``\\x1b``, ``\\u202e``."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    code = ord(character)
    return named.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def text_problem(value: str, *, lines: bool = False) -> str | None:
    """Why ``value`` cannot be stored, one phrase naming the first bad character; or None.

    ``lines=False`` is the rule for names; ``lines=True`` allows line feeds and tabs.
    """
    found = (_NOT_IN_LINES if lines else _NOT_IN_NAMES).search(value)
    if found is None:
        return None
    if lines:
        problem = _("must not contain control characters (found {character})")
    else:
        problem = _("must not contain line breaks or control characters (found {character})")
    return problem.format(character=escaped(found.group()))


def check_names(**names: str | None) -> None:
    """Raise ValidationFailed naming every field whose value breaks the rule for names."""
    errors = {
        field: problem
        for field, value in names.items()
        if value is not None and (problem := text_problem(value)) is not None
    }
    if errors:
        raise ValidationFailed(errors)


def clean_name(value: str, *, limit: int, field: str = "name") -> str:
    """``value`` without surrounding spaces, if it is a name of 1-``limit`` characters that
    keeps the rule for names; else ValidationFailed for ``field``."""
    name = value.strip()
    problem = text_problem(name)
    if not name or len(name) > limit:
        problem = f"must be 1-{limit} characters"
    if problem is not None:
        raise ValidationFailed({field: problem})
    return name


def json_printable(document: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with the characters JSON
    leaves raw (DEL, the C1 set, line separators, bidirectional overrides) written as
    ``\\uXXXX`` escapes: it parses to exactly the same values, and cannot drive a terminal."""
    return _RAW_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", document)


def printable(text: str, *, lines: bool = True) -> str:
    """``text`` made harmless for a terminal: every character the rules above refuse is
    shown as its escape. ``lines`` keeps line feeds and tabs (CRLF becomes LF); without it
    the result is one line."""
    if lines:
        text = text.replace("\r\n", "\n")
        pattern = _NOT_IN_LINES
    else:
        pattern = _NOT_IN_NAMES
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda found: escaped(found.group()), text)
