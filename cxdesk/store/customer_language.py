"""The customer's language: which one a ticket's messages and survey page use, and a text's
variant in it.

A customer's language is the ticket's ``customer_language`` (chosen at check-in, or the
contact's), else the desk's ``language`` setting (``cxdesk.i18n.DESK_LANGUAGE_SETTING``), else
English. A text with language variants (a workflow message's ``languages``, a survey's
question) is used in the customer's language, else in the desk's, else as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from cxdesk.errors import ValidationFailed
from cxdesk.i18n import DEFAULT_LANGUAGE, DESK_LANGUAGE_SETTING, LANGUAGES, language_code
from cxdesk.store.directory import get_setting
from cxdesk.store.models import Ticket

LANGUAGES_KEY = "languages"
"""The key of a text's variants: ``{"it": {"body": ...}, "ja": {...}}``."""


def customer_language_code(value: str | None, *, field: str = "language") -> str | None:
    """The language code for ``value`` (a code such as ``it`` or ``it_IT``, or a name such as
    ``Italiano``); None for none; ValidationFailed (one line) for one the desk does not have."""
    if value is None or not value.strip():
        return None
    code = language_code(value)
    if code not in LANGUAGES:
        known = ", ".join(f"{c} ({name})" for c, name in LANGUAGES.items())
        raise ValidationFailed({field: f"unknown language {value.strip()!r} (known: {known})"})
    return code


def desk_language(session: Session) -> str:
    """The desk's language setting, else English."""
    code = language_code(get_setting(session, DESK_LANGUAGE_SETTING))
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def ticket_language(session: Session, ticket: Ticket | None) -> str:
    """The language a ticket's customer is written to in."""
    if ticket is not None and ticket.customer_language in LANGUAGES:
        return str(ticket.customer_language)
    return desk_language(session)


def variant_problems(variants: Any, keys: tuple[str, ...], where: str = LANGUAGES_KEY) -> list[str]:
    """Problems with a ``languages`` table: known language codes, each a table of ``keys``."""
    if not isinstance(variants, Mapping):
        return [f"{where} must be a table of languages ({', '.join(LANGUAGES)})"]
    problems: list[str] = []
    for code, texts in variants.items():
        if code not in LANGUAGES:
            problems.append(f"{where}: unknown language {code!r} (known: {', '.join(LANGUAGES)})")
        elif not isinstance(texts, Mapping):
            problems.append(f"{where}.{code} must be a table of {', '.join(keys)}")
        else:
            problems += [
                f"{where}.{code}: unknown key {key!r} (known: {', '.join(keys)})"
                for key in texts
                if key not in keys
            ]
    return problems


def text_in_language(
    texts: Mapping[str, Any], language: str, fallback: str | None = None
) -> dict[str, Any]:
    """``texts`` with the keys its ``languages`` table gives for ``language`` laid over them
    (the text as written is English; a language it lacks gets ``fallback``'s, the desk's);
    the table itself is left out."""
    variants = texts.get(LANGUAGES_KEY) or {}
    chosen = variants.get(language)
    if chosen is None and language != DEFAULT_LANGUAGE and fallback is not None:
        chosen = variants.get(fallback)
    result = {k: v for k, v in texts.items() if k != LANGUAGES_KEY}
    result.update(chosen or {})
    return result
