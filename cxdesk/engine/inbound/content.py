"""What a customer's email says: its new text and its files, decoded and within the desk's rules.

- **Text**: the first ``text/plain`` body (``format=flowed`` paragraphs joined), else the
  ``text/html`` one as readable text (parsed with the stdlib ``html.parser``: tags and
  scripts are dropped, never run or kept; quoted ``<blockquote>`` history becomes ``>``
  lines). Then only the new text of the reply: mail-parser-reply cuts the quoted history
  ("On ... wrote:", Outlook's From:/Sent: block, "-----Original Message-----") and the
  signature ("-- ", "Best regards", "Sent from my iPhone"), and trailing ``>`` lines go too.
  Every part is decoded with its declared charset, then UTF-8, then Windows-1252 (an unknown
  or lying charset never fails). Control characters are shown as visible escapes
  (``cxdesk.text.printable``): stored text never drives a terminal.
- **Files**: every other part (a forwarded message as ``.eml``) is an attachment, kept when it
  is within the desk's limits (``store.tickets``: count, size, type by extension) and otherwise
  listed as refused with its reason: nothing is dropped silently.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from pathlib import PurePath

from cxdesk.store.tickets import ATTACHMENT_TYPES, MAX_ATTACHMENTS, attachment_problem
from cxdesk.text import printable

REPLY_PARSE_LIMIT = 50_000
"""Characters of a body the reply parser reads: the history a reply quotes starts near its
top. A longer body with no history found in them is kept whole."""
LONG_LINE = 300
"""Lines longer than this reach the reply parser as a placeholder: no quote header or
signature is that long, and its regexes take time growing with the square of a line's length
(a 44 KB line of "On a wrote " took 100 s; with the placeholders a 50 KB body of them takes
well under a second)."""
REPLY_PARSE_LINES = 1_000
"""Lines of a body the reply parser reads at most, blank runs made one blank line first: one of
its patterns takes time growing with the square of the number of blank lines (8,000 empty
lines, 8 KB, took 17 s; 200 KB of them would have held the importer for hours)."""
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "ja", "sv", "da", "pl", "cs", "ko", "zh"]
_FALLBACK_CHARSETS = ("utf-8", "windows-1252")


@dataclass(frozen=True)
class RefusedFile:
    """An attachment the desk did not keep, and why."""

    filename: str
    reason: str


@dataclass
class MailContent:
    """The new text of a message and its files, ready for ``store.inbound``."""

    text: str
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(filename, content type, bytes), each within the desk's limits."""
    refused: list[RefusedFile] = field(default_factory=list)

    def comment_body(self) -> str:
        """The text with a line per refused file, as the conversation shows it."""
        lines = [self.text] if self.text else []
        lines += [f"[Attachment not kept: {r.filename}: {r.reason}]" for r in self.refused]
        return "\n\n".join(lines) or "(no text)"


def decode_part(part: Message) -> str:
    """A text part's characters: its declared charset, then UTF-8, then Windows-1252."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    declared = part.get_content_charset()
    for charset in (declared, *_FALLBACK_CHARSETS) if declared else _FALLBACK_CHARSETS:
        try:
            return data.decode(charset)
        except (LookupError, ValueError):  # unknown, malformed (a NUL in it) or lying
            continue
    return data.decode("windows-1252", errors="replace")


def unflow(text: str, *, delsp: bool = False) -> str:
    """A ``format=flowed`` body (RFC 3676, Thunderbird and Apple Mail send it) as its
    paragraphs: a line ending in a space goes on with the next line of the same quote depth;
    space-stuffing is undone; ``delsp=yes`` drops the space at the soft break."""
    lines: list[str] = []
    open_quote: str | None = None  # the quote prefix of a line that flows on, if any
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        quote, body = line[:depth], line[depth:]
        body = body[1:] if body.startswith(" ") else body
        flows = body.endswith(" ") and body != "-- "
        if flows and delsp:
            body = body[:-1]
        if open_quote is not None and quote == open_quote and lines:
            lines[-1] += body
        else:
            lines.append(f"{quote} {body}" if quote and body else quote + body)
        open_quote = quote if flows else None
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    """HTML as readable text: block elements break lines, scripts and styles are dropped,
    blockquotes become ``>`` quotes, links keep their address when it differs from the text."""

    _BLOCKS = frozenset({
        "address", "article", "aside", "div", "dl", "dt", "dd", "fieldset", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
        "p", "pre", "section", "table", "tr", "ul",
    })  # fmt: skip
    _HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._hidden = 0
        self._quote = 0
        self._pre = 0
        self._href: list[tuple[str | None, int]] = []
        """Each open link's address and where its text starts in ``_line``."""

    def _break(self) -> None:
        text = "".join(self._line)
        if not self._pre:
            text = " ".join(text.split())
        if text or (self.lines and self.lines[-1]):
            self.lines.append("> " * self._quote + text if text else "")
        self._line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self._break()
        elif tag == "blockquote":
            self._break()
            self._quote += 1
        elif tag in self._BLOCKS:
            self._break()
            self._pre += tag == "pre"
            if tag == "li":
                self._line.append("• ")  # not "- ": the reply parser reads that as a signature
        elif tag == "a":
            self._href.append((dict(attrs).get("href"), len(self._line)))
        elif tag == "td" or tag == "th":
            self._line.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "blockquote":
            self._break()
            self._quote = max(0, self._quote - 1)
        elif tag in self._BLOCKS:
            self._break()
            self._pre -= tag == "pre" and self._pre > 0
        elif tag == "a" and self._href:
            href, start = self._href.pop()
            shown = "".join(self._line[start:])  # the link's own text, not the whole line's
            if href and href.startswith(("http://", "https://")) and href not in shown:
                self._line.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._line.append(data)

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines).strip()


_UNCLOSED_TAG = re.compile(r"<(?![^<>]*>)|<!\[(?![^\]<>]*\]>)")
"""A ``<`` with no ``>`` before the next ``<``, and a marked section other than Outlook's
``<![if ...]>``/``<![endif]>`` (a CDATA one, say): not a tag here. The stdlib parser rescans to
the end of the text from each such one (Python < 3.13.4, CVE-2025-6069): 20,000 of ``<a ``
(60 KB) took 56 s, 20,000 unclosed ``<![CDATA[>`` 1.5 s."""


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; markup is never kept or run."""
    parser = _HtmlText()
    parser.feed(_UNCLOSED_TAG.sub(lambda found: "&lt;" + found[0][1:], html))
    parser.close()
    return parser.text()


def new_text(text: str) -> str:
    """Only what the customer wrote this time: no quoted history, no signature."""
    from mailparser_reply import EmailReplyParser  # imported when mail arrives, not at start

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    head = "\n".join(text[:REPLY_PARSE_LIMIT].split("\n")[:REPLY_PARSE_LINES])
    rest = text[len(head) :]
    nonce, long_lines = secrets.token_hex(6), list[str]()
    lines: list[str] = []
    for line in head.split("\n"):
        if len(line) > LONG_LINE:
            lines.append(f"cxline{nonce}n{len(long_lines)}")
            long_lines.append(line.strip())
        elif line.strip() or (lines and lines[-1]):
            lines.append(line if line.strip() else "")
    replies = EmailReplyParser(languages=_LANGUAGES).read("\n".join(lines)).replies
    if not replies or (rest and len(replies) == 1):
        return text.strip()  # no history found in what was read: keep it all
    latest = (replies[0].body or replies[0].content).split("\n")  # all a "signature": keep it
    while latest and (not latest[-1].strip() or latest[-1].lstrip().startswith(">")):
        latest.pop()  # quoted lines left below the new text
    restored = re.sub(
        rf"cxline{nonce}n([0-9]+)", lambda m: long_lines[int(m[1])], "\n".join(latest)
    )
    return restored.strip()


def _body_part(message: EmailMessage) -> Message | None:
    try:
        return message.get_body(preferencelist=("plain", "html"))
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        # AttributeError: a mangled multipart whose part is text, not a message (the
        # stdlib's _find_body calls is_attachment on it)
        return None


def _leaves(part: Message) -> list[Message]:
    """The parts that carry content, depth first; a forwarded message is one part."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    children = part.get_payload()
    if not isinstance(children, list):
        return [part]
    return [leaf for child in children if isinstance(child, Message) for leaf in _leaves(child)]


def _filename(part: Message, position: int) -> str:
    try:
        name = part.get_filename() or ""
    except (TypeError, ValueError, LookupError):
        name = ""
    name = printable(PurePath(name.replace("\\", "/")).name, lines=False).strip()[:255]
    if name and name not in (".", ".."):
        return name
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        extension = ".eml"
    else:
        extension = next((s for s, t in ATTACHMENT_TYPES.items() if t == content_type), None) or (
            mimetypes.guess_extension(content_type) or ".bin"
        )
    return f"attachment-{position}{extension}"


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return bytes(inner[0].as_bytes())
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _is_file(part: Message) -> bool:
    """Text parts without a name are bodies (an HTML alternative), not files."""
    try:
        named = bool(part.get_filename())
    except (TypeError, ValueError, LookupError):
        named = True
    return (
        named
        or part.get_content_disposition() == "attachment"
        or part.get_content_maintype() != "text"
    )


def extract(message: EmailMessage) -> MailContent:
    """The new text and the files of ``message``."""
    body = _body_part(message)
    if body is None:
        text = ""
    elif body.get_content_subtype() == "html":
        text = html_to_text(decode_part(body))
    elif str(body.get_param("format", "")).lower() == "flowed":
        delsp = str(body.get_param("delsp", "")).lower() == "yes"
        text = unflow(decode_part(body), delsp=delsp)
    else:
        text = decode_part(body)
    content = MailContent(text=printable(new_text(text)) if text else "")
    files = [p for p in _leaves(message) if p is not body and _is_file(p)]
    for position, part in enumerate(files, start=1):
        name = _filename(part, position)
        data = _part_bytes(part)
        problem = attachment_problem(name, len(data))
        if problem is None and len(content.files) >= MAX_ATTACHMENTS:
            problem = f"more than {MAX_ATTACHMENTS} files in one message"
        if problem is not None:
            content.refused.append(RefusedFile(name, problem))
        else:
            suffix = PurePath(name).suffix.lower()
            content.files.append((name, ATTACHMENT_TYPES[suffix], data))
    return content
