"""The check-in form: the check-in survey's questions as a keyboard form, built from its definition.

Each question becomes an Input (text, email, phone, textarea, number; placeholder = its hint)
or a Select (choice), with a Label under it for its error. Enter in any Input submits; a bad
answer is shown under its field and nothing is saved; after a good one the form clears, the
first field takes focus and the created ticket keys are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlmodel import col, select
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, Select

from cxdesk.engine.dispatch import auto_assign_and_dispatch, unit_of_work
from cxdesk.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, _, current_language
from cxdesk.screens.base import DeskScreen
from cxdesk.store.customer_language import desk_language
from cxdesk.store.db import read_session
from cxdesk.store.models import Ticket
from cxdesk.store.surveys import get_survey, submit_response, survey_in_language

SURVEY_NAME = "checkin"
LANGUAGE_ID = "customer-language"
"""The customer's language (their SMS, email and survey page), after the questions."""
SEEDED_LABELS = (
    N_("First name"),
    N_("Last name"),
    N_("Email"),
    N_("Phone"),
    N_("Username (product account name)"),
    N_("Which product do you need help with?"),
    N_("Notes (time constraints, the problem, anything else)"),
    N_("Ada"),
    N_("Lovelace"),
    N_("1-XXX-XXX-XXXX or +1XXXXXXXXXX"),
    N_("Needs to leave by 3pm; dashboard filters reset"),
)
"""The demo desk's check-in questions and hints (``seeds/ask_the_experts.toml``): shown
translated while a desk keeps their wording; a desk's own show as its admin wrote them."""


def field_id(question_id: str) -> str:
    return f"q-{question_id}"


def error_id(question_id: str) -> str:
    return f"err-{question_id}"


def question_widget(question: Mapping[str, Any]) -> Widget:
    """The input for one question, from its type."""
    qid = str(question["id"])
    if question.get("type") == "choice":
        choices = [str(choice) for choice in question.get("choices", [])]
        return Select(
            [(choice, choice) for choice in choices],
            prompt=_(str(question.get("hint") or "")) or _("Choose…"),
            id=field_id(qid),
        )
    return Input(placeholder=_(str(question.get("hint") or "")), id=field_id(qid))


class CheckinScreen(DeskScreen):
    DEFAULT_CSS = """
    CheckinScreen #form { padding: 0 2; }
    CheckinScreen .row { height: auto; }
    CheckinScreen .question { width: 26; padding-top: 1; text-style: bold; }
    CheckinScreen .answer { width: 1fr; height: auto; }
    CheckinScreen .field-error { color: $error; height: auto; padding-left: 1; }
    CheckinScreen #checked-in { color: $success; height: auto; margin: 1 2 0 2; }
    CheckinScreen #checked-in.-refused { color: $error; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.questions: list[dict[str, Any]] = []
        """The survey's questions, in order, once loaded."""
        self.desk_language = DEFAULT_LANGUAGE

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="checked-in", markup=False)
        yield VerticalScroll(Label(_("Loading the check-in form…")), id="form")
        yield Footer()

    def on_mount(self) -> None:
        self.load_survey()

    def load_survey(self) -> None:
        def read() -> list[dict[str, Any]]:
            with read_session(self.engine) as session:
                language = current_language()
                survey = get_survey(session, SURVEY_NAME)
                questions = survey_in_language(survey, language, language).questions
                self.desk_language = desk_language(session)
            return questions

        self.in_thread(read, lambda questions: self.call_later(self._build_form, questions),
                       group="survey", reading=True)  # fmt: skip

    def _language_row(self) -> Widget:
        choices = [(name, code) for code, name in LANGUAGES.items()]
        picker = Select(choices, value=self.desk_language, allow_blank=False, id=LANGUAGE_ID)
        return Horizontal(
            Label(_("Language"), classes="question"),
            Vertical(picker, classes="answer"),
            classes="row",
        )

    async def _build_form(self, questions: Sequence[dict[str, Any]]) -> None:
        self.questions = list(questions)
        form = self.query_one("#form", VerticalScroll)
        await form.remove_children()
        rows: list[Widget] = []
        for question in self.questions:
            mark = " *" if question.get("required") else ""
            error = Label("", id=error_id(str(question["id"])), classes="field-error", markup=False)
            error.display = False
            rows.append(
                Horizontal(
                    Label(_(str(question["label"])) + mark, classes="question", markup=False),
                    Vertical(question_widget(question), error, classes="answer"),
                    classes="row",
                )
            )
        rows.append(self._language_row())
        await form.mount_all(rows)
        self._focus_first()

    def _focus_first(self) -> None:
        if self.questions:
            self.query_one(f"#{field_id(str(self.questions[0]['id']))}").focus()

    def answers(self) -> dict[str, str]:
        """What is typed in the form, by question id (an unset choice is empty)."""
        result: dict[str, str] = {}
        for question in self.questions:
            widget = self.query_one(f"#{field_id(str(question['id']))}")
            if isinstance(widget, Select):
                result[str(question["id"])] = "" if widget.is_blank() else str(widget.value)
            elif isinstance(widget, Input):
                result[str(question["id"])] = widget.value
        return result

    @on(Input.Submitted)
    def _submit(self) -> None:
        if self.questions:
            self.query_one("#checked-in", Label).update(_("Saving…"))
            language = self.query_one(f"#{LANGUAGE_ID}", Select).value
            self.check_in(self.answers(), str(language))

    def check_in(self, answers: dict[str, str], language: str | None = None) -> None:
        def check_in() -> list[str]:
            with unit_of_work(self.engine) as session:
                response = submit_response(
                    session,
                    actor=self.user,
                    survey_name=SURVEY_NAME,
                    answers=answers,
                    language=language,
                )
                response_id = response.id
            with read_session(self.engine) as session:
                keys = session.exec(
                    select(Ticket.key)
                    .where(Ticket.response_id == response_id)
                    .order_by(col(Ticket.id))
                ).all()
            auto_assign_and_dispatch(self.engine)  # an auto queue hands it out at once
            return [key for key in keys if key]

        self.in_thread(
            check_in,
            self._checked_in,
            group="check-in",
            failed=partial(self.form_refused, show_errors=self._show_errors),
        )

    def _show_errors(self, errors: Mapping[str, str]) -> None:
        first_bad: str | None = None
        for question in self.questions:
            qid = str(question["id"])
            message = errors.get(qid, "")
            label = self.query_one(f"#{error_id(qid)}", Label)
            label.update(message)
            label.display = bool(message)
            if message and first_bad is None:
                first_bad = qid
        shown = _("Not saved: fix the fields marked below.") if errors else _("Not saved.")
        status = self.query_one("#checked-in", Label)
        status.update(shown)
        status.add_class("-refused")
        if first_bad is not None:
            self.query_one(f"#{field_id(first_bad)}").focus()

    def _checked_in(self, keys: Sequence[str]) -> None:
        for question in self.questions:
            qid = str(question["id"])
            widget = self.query_one(f"#{field_id(qid)}")
            if isinstance(widget, Select):
                widget.clear()
            elif isinstance(widget, Input):
                widget.value = ""
            error = self.query_one(f"#{error_id(qid)}", Label)
            error.update("")
            error.display = False
        self.query_one(f"#{LANGUAGE_ID}", Select).value = self.desk_language
        done = (
            # TRANSLATORS: between the ticket keys of one check-in ("EXP-1, EXP-2")
            _("Checked in: {keys}").format(keys=_(", ").join(keys))
            if keys
            else _("Checked in (no ticket was created)")
        )
        status = self.query_one("#checked-in", Label)
        status.update(done)
        status.remove_class("-refused")
        self._focus_first()
