"""What a customer's email says (``engine.inbound.content``): the new text of a reply, HTML as
text, every charset; no database needed."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cxdesk.engine.inbound.content import (
    LONG_LINE,
    decode_part,
    extract,
    html_to_text,
    new_text,
    unflow,
)
from cxdesk.engine.inbound.mailgate import RefusedMail, parse_mail
from tests.mail_helpers import MAIL


def test_a_long_paragraph_is_kept_whole_and_the_history_below_it_cut() -> None:
    paragraph = "The export stops at row 10,000 and the file is cut. " * 30
    assert len(paragraph) > LONG_LINE
    text = f"{paragraph}\n\nOn Mon, 7 Dec 2026 at 10:02, Maya <help@desk.example> wrote:\n> Hi"
    assert new_text(text) == paragraph.strip()


def test_a_line_built_to_stall_the_reply_parser_is_kept_as_it_is() -> None:
    """44 KB of "On a wrote " on one line took the parser's regexes 100 s; it is not a header."""
    text = "On a wrote " * 4000
    assert new_text(text) == text.strip()


def test_quoted_lines_left_below_the_new_text_go_and_a_bare_signature_stays() -> None:
    assert new_text("Works now.\n\n> old line\n>\n> older line\n") == "Works now."
    assert new_text("Thanks,\nAnn") == "Thanks,\nAnn"


def test_html_is_read_as_text_and_never_kept_as_markup() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Row&nbsp;1 &lt;b&gt; &amp; <a href='https://a.example/x'>this</a></p>"
        "<script>alert(1)</script><pre>  two  spaces</pre>"
        "<ol><li>first</li><li>second</li></ol><blockquote>quoted<br>old</blockquote></body>"
    )
    assert html_to_text(html) == (
        "Row 1 <b> & this <https://a.example/x>\n\n  two  spaces\n\n• first\n\n• second\n\n"
        "> quoted\n> old"
    )


def test_a_part_is_decoded_by_its_charset_then_utf8_then_windows_1252() -> None:
    def part(data: bytes, charset: str) -> EmailMessage:
        message = EmailMessage()
        message.set_payload(data)
        message["Content-Type"] = f"text/plain; charset={charset}"
        return message

    assert decode_part(part("Grüße".encode("latin-1"), "iso-8859-1")) == "Grüße"
    assert decode_part(part("Grüße".encode(), "x-made-up")) == "Grüße"
    assert decode_part(part("Grüße €".encode("cp1252"), "utf-8")) == "Grüße €"


def test_format_flowed_paragraphs_are_joined_and_hard_breaks_kept() -> None:
    flowed = "One long \r\nparagraph.\r\nA hard break.\r\n>> quoted \r\n>> on\r\n \r\n-- \r\nAnn"
    assert unflow(flowed) == "One long paragraph.\nA hard break.\n>> quoted on\n\n-- \nAnn"
    assert unflow("no\u00a0space \r\nhere", delsp=True) == "no\u00a0spacehere"


# -- anything an attacker can send ---------------------------------------------------------

SAMPLES = sorted(MAIL.glob("*.eml"))
FRAGMENTS = [
    b"\x00", b"\xff\xfe", b"=?", b"?=", b"=?utf-8?b?", b"=?iso-2022-jp?b?GyRC?=", b"\r\n",
    b"\n\n", b"--", b'Content-Type: multipart/mixed; boundary="', b"charset=", b"<", b">",
    b"=\n", b"Content-Transfer-Encoding: base64\n", b"filename*=utf-8''%ff%fe",
    b"Content-Type: message/rfc822\n\n", b"format=flowed; delsp=yes",
    b"Content-Type: text/html\n\n<p><a href=", b"<blockquote>", b"&#x110000;", b"&#0;",
]  # fmt: skip
edits = st.lists(
    st.tuples(
        st.floats(0, 1), st.integers(0, 30), st.one_of(st.sampled_from(FRAGMENTS), st.binary())
    ),
    max_size=8,
)


def _edited(raw: bytes, changes: list[tuple[float, int, bytes]]) -> bytes:
    for where, cut, inserted in changes:
        at = int(where * len(raw))
        raw = raw[:at] + inserted + raw[at + cut :]
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(SAMPLES), changes=edits)
@example(sample=MAIL / "bounce-gmail.eml", changes=[(0.21875, 0, b"\x00")])  # found by CI
def test_a_mangled_message_is_read_or_refused_never_a_traceback(
    sample: Path, changes: list[tuple[float, int, bytes]]
) -> None:
    """Any bytes: parse_mail and extract either read them or refuse them (RefusedMail); what
    they read is text a database and a terminal can take (no NUL, ESC or lone surrogates)."""
    try:
        mail = parse_mail(_edited(sample.read_bytes(), changes))
    except RefusedMail:
        return
    words = extract(mail.message)
    for text in (mail.subject, mail.sender_name, mail.message_id, words.comment_body(),
                 *(name for name, _, _ in words.files)):  # fmt: skip
        text.encode("utf-8")
        assert "\x00" not in text and "\x1b" not in text


def test_html_built_to_stall_the_parser_is_read_as_its_text() -> None:
    """60 KB of unclosed "<a " took the stdlib HTML parser 56 s (it rescanned from each one),
    and 20,000 links on one line 2 s (each link looked at the whole line so far)."""
    assert html_to_text("<a " * 20_000) == ("<a " * 20_000).strip()
    assert (
        html_to_text("x <![CDATA[> y <![if !mso]><p>kept</p><![endif]>") == "x <![CDATA[> y\nkept"
    )
    links = '<a href="https://a.example/">here</a> ' * 20_000
    assert html_to_text(links).count("here <https://a.example/>") == 20_000


def test_a_body_of_blank_lines_does_not_stall_the_reply_parser() -> None:
    """8,000 blank lines took the reply parser 17 s (its time grows with their square)."""
    assert new_text("\n" * 40_000 + "Works now.") == "Works now."
    assert new_text("Works now.\n\n\n\n\nOn Mon, 7 Dec 2026, Maya wrote:\n> Hi") == "Works now."
