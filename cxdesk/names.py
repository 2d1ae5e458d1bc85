"""People's names in the order their language writes them.

Japanese writes the family name first ("山田 太郎"); the other languages of the desk write the
given name first ("Taro Yamada"). A check-in asks for both names apart and composes the
ticket's customer name in the customer's language's order (``full_name``). A name written in
Chinese characters or kana is family-first whatever the language the customer chose (a Japanese
visitor at an English desk is still 山田 太郎, never 太郎 山田): the script decides too.
"""

from __future__ import annotations

from cxdesk.i18n import language_code

FAMILY_NAME_FIRST = frozenset({"ja"})
"""The desk's languages that write the family name before the given name."""

GIVEN_FIRST_TEMPLATE = "${q://first_name} ${q://last_name}"
FAMILY_FIRST_TEMPLATE = "${q://last_name} ${q://first_name}"
"""A check-in's customer name from its answers, in each order (``engine.tasks``)."""


def family_name_first(language: str | None, *names: str) -> bool:
    """Whether a name is written family name first: in ``language`` (ja), or because every
    one of ``names`` given is written in Chinese characters or kana."""
    if language_code(language) in FAMILY_NAME_FIRST:
        return True
    written = [name for name in names if name and name.strip()]
    return bool(written) and all(in_east_asian_script(name) for name in written)


def in_east_asian_script(name: str) -> bool:
    """Whether ``name``'s letters are Chinese characters (kanji), hiragana or katakana."""
    letters = [character for character in name if character.isalpha()]
    return bool(letters) and all(_east_asian(character) for character in letters)


def _east_asian(character: str) -> bool:
    code = ord(character)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF66 <= code <= 0xFF9F  # halfwidth katakana
        or 0x20000 <= code <= 0x2FA1F  # CJK extensions B-F, compatibility supplement
    )


def full_name(first: str, last: str, language: str | None) -> str:
    """``first`` (given) and ``last`` (family) names as ``language`` (or their script)
    writes them."""
    parts = (last, first) if family_name_first(language, first, last) else (first, last)
    return " ".join(" ".join(parts).split())


def name_template(language: str | None, first: str = "", last: str = "") -> str:
    """The check-in's customer-name template in the order of ``language`` or of the names'
    script (``first`` and ``last``, the answers)."""
    ordered = family_name_first(language, first, last)
    return FAMILY_FIRST_TEMPLATE if ordered else GIVEN_FIRST_TEMPLATE
