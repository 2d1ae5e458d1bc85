"""The survey pages as HTML: a form per survey, a thank-you page and a refusal page.

Plain, accessible HTML without JavaScript: every question has a visible label; scales and
choices are radio buttons in a fieldset whose legend is the question; required questions
say so in words and carry ``required``; after a refused submit an error summary (role
``alert``) lists each problem, and each field points at its own message with
``aria-describedby``. Every value shown is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

STYLE = """
body { font: 1.05rem/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f6f4; }
main { max-width: 40rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff;
       border: 1px solid #ccc; border-radius: 6px; }
h1 { font-size: 1.5rem; margin-top: 0; }
fieldset { border: 0; padding: 0; margin: 0 0 1.5rem; }
legend, label.question { font-weight: 600; display: block; margin-bottom: .4rem; }
.scale { display: flex; flex-wrap: wrap; gap: .4rem; }
.scale label { border: 1px solid #767676; border-radius: 4px; padding: .3rem .6rem; }
.choices label { display: block; }
input[type=text], input[type=email], textarea, select { width: 100%; font: inherit;
  padding: .4rem; border: 1px solid #767676; border-radius: 4px; box-sizing: border-box; }
textarea { min-height: 6rem; }
.field { margin-bottom: 1.5rem; }
.hint { color: #505050; font-size: .9rem; }
.error { color: #a00000; font-weight: 600; }
.summary { border: 2px solid #a00000; padding: .5rem 1rem; margin-bottom: 1.5rem; }
button { font: inherit; padding: .5rem 1.5rem; background: #004f9f; color: #fff; border: 0;
         border-radius: 4px; }
:focus-visible { outline: 3px solid #e07000; outline-offset: 2px; }
"""


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def message_page(title: str, message: str) -> str:
    """A page that only says something: thanks, or why a link is refused."""
    return page(title, f"<h1>{escape(title)}</h1>\n<p>{escape(message)}</p>")


def _error_id(qid: str) -> str:
    return f"{qid}-error"


def _question(question: Mapping[str, Any], value: str, error: str | None) -> str:
    qid = escape(str(question["id"]))
    kind = question.get("type", "text")
    label = escape(str(question.get("label") or qid))
    required = bool(question.get("required"))
    need = " <span>(required)</span>" if required else " <span>(optional)</span>"
    req_attr = " required" if required else ""
    described = []
    hint_html = ""
    if question.get("hint"):
        hint_html = (
            f'<p class="hint" id="{qid}-hint">For example: {escape(str(question["hint"]))}</p>'
        )
        described.append(f"{qid}-hint")
    error_html = ""
    if error:
        error_html = f'<p class="error" id="{_error_id(qid)}">{escape(error)}</p>'
        described.append(_error_id(qid))
    aria = ""
    if described:
        aria += f' aria-describedby="{" ".join(described)}"'
    group_aria = aria  # a fieldset is described, not marked invalid
    if error:
        aria += ' aria-invalid="true"'
    low, high = question.get("min"), question.get("max")
    if kind == "number" and low is not None and high is not None and int(high) - int(low) <= 10:
        options = "".join(
            f'<label><input type="radio" name="{qid}" value="{n}"'
            f"{' checked' if value == str(n) else ''}{req_attr}> {n}</label>"
            for n in range(int(low), int(high) + 1)
        )
        return (
            f'<fieldset class="field" id="{qid}"{group_aria}>\n<legend>{label}{need}</legend>\n'
            f"{hint_html}"
            f'{error_html}<div class="scale">{options}</div>\n</fieldset>\n'
        )
    if kind == "choice":
        choices = [str(c) for c in question.get("choices", [])]
        options = "".join(
            f'<label><input type="radio" name="{qid}" value="{escape(c)}"'
            f"{' checked' if value == c else ''}{req_attr}> {escape(c)}</label>"
            for c in choices
        )
        return (
            f'<fieldset class="field choices" id="{qid}"{group_aria}>\n'
            f"<legend>{label}{need}</legend>\n"
            f"{hint_html}{error_html}{options}\n</fieldset>\n"
        )
    head = f'<div class="field">\n<label class="question" for="{qid}">{label}{need}</label>\n'
    if kind == "textarea":
        control = f'<textarea id="{qid}" name="{qid}"{req_attr}{aria}>{escape(value)}</textarea>'
    else:
        input_type = {"email": "email", "phone": "tel"}.get(str(kind), "text")
        inputmode = ' inputmode="numeric"' if kind == "number" else ""
        autocomplete = {"email": "email", "phone": "tel"}.get(str(kind), "off")
        control = (
            f'<input type="{input_type}" id="{qid}" name="{qid}" value="{escape(value)}"'
            f'{inputmode} autocomplete="{autocomplete}"{req_attr}{aria}>'
        )
    return f"{head}{hint_html}{error_html}{control}\n</div>\n"


def form_page(
    *,
    title: str,
    intro: str,
    questions: list[dict[str, Any]],
    action: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    hidden: Mapping[str, str] | None = None,
) -> str:
    """The survey as a form posting to ``action``; ``errors`` by question id after a refusal."""
    values, errors = values or {}, errors or {}
    parts = [f"<h1>{escape(title)}</h1>\n<p>{escape(intro)}</p>\n"]
    if errors:
        labels = {str(q["id"]): str(q.get("label") or q["id"]) for q in questions}
        items = "".join(
            f'<li><a href="#{escape(qid)}">{escape(labels.get(qid, qid))}: {escape(msg)}</a></li>'
            for qid, msg in errors.items()
        )
        parts.append(
            '<div class="summary" role="alert">\n<h2>Please check your answers</h2>\n'
            f"<ul>{items}</ul>\n</div>\n"
        )
    parts.append(f'<form method="post" action="{escape(action)}">\n')
    for name, value in (hidden or {}).items():
        parts.append(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n')
    for question in questions:
        qid = str(question["id"])
        parts.append(_question(question, values.get(qid, ""), errors.get(qid)))
    parts.append('<button type="submit">Send my answer</button>\n</form>')
    return page(title, "".join(parts))
