"""The desk's languages: gettext catalogs (made with Babel) for en, ja, fr and it.

Every user-facing string goes through ``_`` (or ``ngettext`` for counts) with named
placeholders, so a translator can move them::

    from cxdesk.i18n import _, ngettext
    _("Checked in: {key}").format(key=ticket.key)
    ngettext("{n} event", "{n} events", n).format(n=n)

A string defined at import time (a class attribute, a module constant) is marked with ``N_``
(extracted, not translated) and translated where it is shown: ``_(LABEL)``. Binding
descriptions are translated by ``translated_bindings`` when a screen is made.

Which language: ``use_language`` sets the process's (the TUI's user, the CLI's acting user,
else ``LANG``); ``in_language`` overrides it for a block in this thread or task (a customer's
SMS, email or survey page). Catalogs are read once per language (stdlib ``gettext``: no Babel at
import; Babel formats dates, in ``cxdesk.local_time``). The catalogs live in
``cxdesk/locale/<lang>/LC_MESSAGES/cxdesk.po``; ``scripts/catalogs`` extracts, updates,
compiles and checks them (README: Translations).

The pseudo-language ``qps`` (tests only) shows every translated string as ``⟦...⟧``: a screen
run in it shows at a glance which text did not go through the catalog.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.dom import DOMNode

DOMAIN = "cxdesk"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES: dict[str, str] = {"en": "English", "ja": "日本語", "fr": "Français", "it": "Italiano"}
"""Each language's code and its name in itself (as a picker shows it)."""
DEFAULT_LANGUAGE = "en"
PSEUDO = "qps"
"""The pseudo-language of the tests: every catalog string wrapped in ``⟦`` and ``⟧``."""
DESK_LANGUAGE_SETTING = "language"
"""The desk setting (``cxdesk setting set language fr``): the customers' default language and
the language of a user who has not chosen one."""

_process_language = DEFAULT_LANGUAGE
_block_language: ContextVar[str | None] = ContextVar("cxdesk_language", default=None)


class _Pseudo(_gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"

    def pgettext(self, context: str, message: str) -> str:
        return f"⟦{message}⟧"


@cache
def _translations(language: str) -> _gettext.NullTranslations:
    if language == PSEUDO:
        return _Pseudo()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def language_code(value: str | None) -> str | None:
    """A known language code for ``value`` ("fr", "fr_FR.UTF-8", "ja-JP", "Français"), or
    None. The pseudo-language counts only when given exactly."""
    if not value:
        return None
    text = value.strip()
    if text == PSEUDO:
        return PSEUDO
    for code, name in LANGUAGES.items():
        if text.casefold() == name.casefold():
            return code
    code = text.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def language_from_environment() -> str | None:
    """The language the environment asks for (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
    ``LANG``, as gettext reads them), if cxdesk has it."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            for part in value.split(":"):
                if code := language_code(part):
                    return code
            if variable != "LANGUAGE":
                return None  # set, and not one of ours: gettext would stop here too
    return None


def use_language(language: str | None) -> str:
    """Speak ``language`` in this process from now on (unknown or None: English); returns
    the code in use."""
    global _process_language
    _process_language = language_code(language) or DEFAULT_LANGUAGE
    return _process_language


def current_language() -> str:
    return _block_language.get() or _process_language


@contextmanager
def in_language(language: str | None) -> Iterator[str]:
    """Speak ``language`` inside the block (this thread or task only); None keeps the current."""
    code = language_code(language) or current_language()
    token = _block_language.set(code)
    try:
        yield code
    finally:
        _block_language.reset(token)


def _(message: str) -> str:
    """``message`` in the current language (itself when the catalog lacks it)."""
    if not message:
        return message
    return _translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` by the current language's plural rule (Japanese has one form)."""
    return _translations(current_language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` where the same English word needs two translations (a context tells them
    apart: ``pgettext("ticket status", "Open")``)."""
    return _translations(current_language()).pgettext(context, message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (import-time text);
    translate it where it is shown, with ``_``."""
    return message


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code)


def translated_bindings(node: DOMNode) -> None:
    """Give ``node`` (a screen, the app, a widget) its bindings with descriptions and
    tooltips in the current language (class-level ``BINDINGS`` are made at import, in no
    language; call this in ``__init__``, after ``super().__init__``, and again when the
    language changed)."""
    from dataclasses import replace

    bindings: Any = node._bindings
    english: dict[tuple[str, str], tuple[str, str]] | None = getattr(node, _ENGLISH, None)
    if english is None:  # the first call: the words as written, to translate again later
        english = {
            (binding.key, binding.action): (binding.description, binding.tooltip)
            for key_bindings in bindings.key_to_bindings.values()
            for binding in key_bindings
        }
        setattr(node, _ENGLISH, english)
    for key, key_bindings in bindings.key_to_bindings.items():
        translated = []
        for binding in key_bindings:
            description, tooltip = english.get(
                (binding.key, binding.action), (binding.description, binding.tooltip)
            )
            translated.append(replace(binding, description=_(description), tooltip=_(tooltip)))
        bindings.key_to_bindings[key] = translated


_ENGLISH = "_cxdesk_english_bindings"
"""Where ``translated_bindings`` keeps a node's bindings' own words: called again after the
language changed, it translates those (also the bindings Textual adds itself, as the
palette's), not the previous language's."""
