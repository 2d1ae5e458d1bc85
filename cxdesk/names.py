"""People's names in the order their language writes them.

Japanese writes the family name first ("山田 太郎"); the other languages of the desk write the
given name first ("Taro Yamada"). A check-in asks for both names apart and composes the
ticket's customer name in the customer's language's order (``full_name``).
"""

from __future__ import annotations

from cxdesk.i18n import language_code

FAMILY_NAME_FIRST = frozenset({"ja"})
"""The desk's languages that write the family name before the given name."""

GIVEN_FIRST_TEMPLATE = "${q://first_name} ${q://last_name}"
FAMILY_FIRST_TEMPLATE = "${q://last_name} ${q://first_name}"
"""A check-in's customer name from its answers, in each order (``engine.tasks``)."""


def family_name_first(language: str | None) -> bool:
    return language_code(language) in FAMILY_NAME_FIRST


def full_name(first: str, last: str, language: str | None) -> str:
    """``first`` (given) and ``last`` (family) names as ``language`` writes them."""
    parts = (last, first) if family_name_first(language) else (first, last)
    return " ".join(" ".join(parts).split())


def name_template(language: str | None) -> str:
    """The check-in's customer-name template in ``language``'s order."""
    return FAMILY_FIRST_TEMPLATE if family_name_first(language) else GIVEN_FIRST_TEMPLATE
