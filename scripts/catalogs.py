"""The translation catalogs, with Babel: extract, update, compile, check (and merge two sides).

    .venv/bin/python scripts/catalogs.py update    extract from the sources into
                                                   cxdesk/locale/cxdesk.pot, bring every
                                                   language's .po in line with it (new
                                                   strings untranslated, gone ones dropped,
                                                   no fuzzy guesses; English copies the
                                                   source), compile every .mo
    .venv/bin/python scripts/catalogs.py check     fail, saying what, unless the .pot is what
                                                   the sources make, every .po translates
                                                   every string (no empty, fuzzy or obsolete
                                                   entry), keeps each string's {placeholders},
                                                   and every .mo is the compiled .po
    .venv/bin/python scripts/catalogs.py merge BASE OURS THEIRS   a git merge driver for .po
                                                   files: both sides' translations (theirs
                                                   where both changed one)

Strings are found in ``cxdesk/**.py`` (``_``, ``N_``, ``ngettext``, ``pgettext``; in
``cxdesk/cli`` also each command's docstring, its ``--help``) and in the web templates
(Jinja2's ``{% trans %}`` and ``_()``). Files are written sorted and without source
locations, so two branches adding strings rarely touch the same lines.
"""

from __future__ import annotations

import ast
import copy
import io
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cxdesk"
LOCALE = PACKAGE / "locale"
POT = LOCALE / "cxdesk.pot"
LANGUAGES = ("en", "ja", "fr", "it")


def extract_cli(
    fileobj: Any, keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[Any, ...]]:
    """Babel's Python extraction plus each CLI command's docstring (its ``--help``, translated
    by ``cxdesk.cli.help_text``): functions decorated ``@x.command(...)`` or registered as
    ``app.command()(function)``."""
    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    tree = ast.parse(source)
    registered = {
        node.args[0].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Call)
        and isinstance(node.func.func, ast.Attribute)
        and node.func.func.attr == "command"
        and node.args
        and isinstance(node.args[0], ast.Name)
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorated = any(
            isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and d.func.attr == "command"
            for d in node.decorator_list
        )
        docstring = ast.get_docstring(node)  # cleaned as Typer cleans it (inspect.cleandoc)
        if docstring and (decorated or node.name in registered):
            yield node.lineno, "", docstring, []


METHODS: list[tuple[str, Any]] = [
    ("**/locale/**", "ignore"),
    ("cli/**.py", extract_cli),
    ("**.py", "python"),
    ("web/templates/**.html", "jinja2"),
]
OPTIONS = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[:!][^{}]*)?\}")
WIDTH = 100
FIXED_DATE = datetime(2026, 12, 1, tzinfo=UTC)
"""Written as every file's creation and revision date: a date that changed on every update
would make every branch's catalogs conflict."""


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "cxdesk.po"


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


def extracted() -> Catalog:
    catalog = Catalog(
        project="cxdesk", version="", charset="utf-8", fuzzy=False, creation_date=FIXED_DATE
    )
    for _filename, _lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, OPTIONS, comment_tags=("TRANSLATORS:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [], auto_comments=comments, context=context)
    return catalog


def serialised_po(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=WIDTH, no_location=True, omit_header=False, sort_output=True)
    return out.getvalue()


def compiled(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def english(catalog: Catalog) -> None:
    """English translates every string as itself."""
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            message.string = tuple(message.id[: catalog.num_plurals])
        else:
            message.string = message.id
        message.flags.discard("fuzzy")


def update() -> None:
    template = extracted()
    LOCALE.mkdir(parents=True, exist_ok=True)
    POT.write_bytes(serialised_po(template))
    for language in LANGUAGES:
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            catalog = read(path, language)
        else:
            catalog = Catalog(locale=language, project="cxdesk", charset="utf-8", fuzzy=False)
        # A copy: update() puts the template's own message objects into the catalog.
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
        catalog.creation_date = catalog.revision_date = FIXED_DATE
        catalog.obsolete.clear()
        if language == "en":
            english(catalog)
        catalog.fuzzy = False
        path.write_bytes(serialised_po(catalog))
        mo_path(language).write_bytes(compiled(catalog))
    found = problems(template)
    said = f"{len(found)} problems" if found else "every catalog complete"
    print(f"{len(template)} strings; {said}")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def message_problems(message: object, language: str) -> list[str]:
    msgid: str | tuple[str, ...] = message.id  # type: ignore[attr-defined]
    string: str | tuple[str, ...] = message.string  # type: ignore[attr-defined]
    shown = msgid[0] if isinstance(msgid, tuple) else msgid
    if "fuzzy" in message.flags:  # type: ignore[attr-defined]
        return [f"{language}: fuzzy: {shown!r}"]
    forms = list(string) if isinstance(string, tuple) else [string]
    if not forms or any(not form for form in forms):
        return [f"{language}: untranslated: {shown!r}"]
    wanted = set().union(
        *(placeholders(text) for text in (msgid if isinstance(msgid, tuple) else [msgid]))
    )
    found = []
    for form in forms:
        have = placeholders(form)
        if have - wanted or (not isinstance(msgid, tuple) and have != wanted):
            found.append(
                f"{language}: placeholders {sorted(have)} instead of {sorted(wanted)}: {shown!r}"
            )
    return found


def problems(template: Catalog | None = None) -> list[str]:
    """What ``check`` finds; ``template``: the sources' strings when already extracted."""
    found: list[str] = []
    template = template or extracted()
    if not POT.exists():
        return ["cxdesk/locale/cxdesk.pot is missing: run scripts/catalogs.py update"]
    pot = read(POT)
    source_ids = {(m.id, m.context) for m in template if m.id}
    pot_ids = {(m.id, m.context) for m in pot if m.id}
    for msgid, _context in sorted(source_ids - pot_ids, key=str)[:20]:
        found.append(f"not in cxdesk.pot (run scripts/catalogs.py update): {msgid!r}")
    for msgid, _context in sorted(pot_ids - source_ids, key=str)[:20]:
        found.append(f"in cxdesk.pot but no longer in the sources: {msgid!r}")
    for language in LANGUAGES:
        path = po_path(language)
        if not path.exists():
            found.append(f"{language}: {path.relative_to(ROOT)} is missing")
            continue
        catalog = read(path, language)
        ids = {(m.id, m.context) for m in catalog if m.id}
        for msgid, _context in sorted(source_ids - ids, key=str)[:20]:
            found.append(f"{language}: missing: {msgid!r}")
        if catalog.obsolete:
            found.append(f"{language}: {len(catalog.obsolete)} obsolete entries")
        for message in catalog:
            if message.id and (message.id, message.context) in source_ids:
                found.extend(message_problems(message, language))
        if not mo_path(language).exists() or mo_path(language).read_bytes() != compiled(catalog):
            found.append(f"{language}: cxdesk.mo is not the compiled cxdesk.po")
    return found


def check() -> int:
    template = extracted()
    found = problems(template)
    for line in found[:200]:
        print(line)
    if len(found) > 200:
        print(f"... and {len(found) - 200} more")
    if found:
        print(f"catalogs: {len(found)} problems", file=sys.stderr)
        return 1
    print(f"catalogs: {', '.join(LANGUAGES)} complete ({len(template)} strings)")
    return 0


def merge(base: Path, ours: Path, theirs: Path) -> int:
    """Union of both sides' entries (theirs wins where both translated a string), written to
    ``ours`` (git's merge-driver contract). ``update`` afterwards drops what the merged sources
    no longer have."""
    del base
    merged = read(ours)
    for message in read(theirs):
        if not message.id:
            continue
        mine = merged.get(message.id, message.context)
        if mine is None or message.string:
            merged[message.id] = message
    ours.write_bytes(serialised_po(merged))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update()
        return 0
    if argv[:1] == ["check"]:
        return check()
    if argv[:1] == ["merge"] and len(argv) == 4:
        return merge(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
