"""Click's usage errors ("No such option", "Missing argument", "Invalid value"...) in the CLI's
language.

Typer's vendored click writes these messages with f-strings, not gettext, so they cannot be
looked up by their English text. ``translating_usage_errors`` wraps the root command's parsing
and running (``make_context`` and ``invoke``, where every usage error of the command tree is
raised) and replaces a usage error by a ``TranslatedUsageError`` written from the error's own
parts (the option's name, the parameter, the value, the pydantic error's type) with the desk's
catalog, in the language of the user this terminal proves (else the environment's). Typer
shows it as it shows any usage error (the usage line, the help hint and the
``Error: ...`` line, exit code 2); ``cxdesk batch`` reads its ``format_message``. A message this
module does not know (a new Typer wording) passes through as Typer wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO, Any

from typer._click import Command, Context
from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer._click.utils import echo

from cxdesk.i18n import N_, _, ngettext

_PYDANTIC_REASONS = {
    "int_parsing": N_("{value} is not a whole number"),
    "int_from_float": N_("{value} is not a whole number"),
    "float_parsing": N_("{value} is not a number"),
    "bool_parsing": N_("{value} is not true or false"),
    "greater_than_equal": N_("{value} is less than {limit}"),
    "greater_than": N_("{value} is not more than {limit}"),
    "less_than_equal": N_("{value} is more than {limit}"),
    "less_than": N_("{value} is not less than {limit}"),
}
"""The reasons pydantic gives for a value Typer could not convert, by the error's type."""

_LIMITS = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le"}
_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra argument\(s\) \((?P<arguments>.*)\)", re.S)
_SUGGESTION = re.compile(r"(?P<message>.*)\. Did you mean (?P<suggestions>.*)\?", re.S)


class TranslatedUsageError(UsageError):
    """A usage error whose message and frame ("Try ... for help.", "Error: ...") are in the
    CLI's language."""

    def __init__(self, message: str, ctx: Context | None, exit_code: int) -> None:
        super().__init__(message, ctx)
        self.exit_code = exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        from cxdesk.cli.common import error_line

        ctx = self.ctx
        if ctx is not None:
            hint = ""
            if ctx.command.get_help_option(ctx) is not None:
                hint = _("Try '{command} {option}' for help.").format(
                    command=ctx.command_path, option=ctx.help_option_names[0]
                )
            echo(ctx.get_usage() + "\n" + hint + "\n", file=file, err=True, color=ctx.color)
        echo(error_line(self.format_message()), file=file, err=True)


def translating_usage_errors(command: Command) -> Command:
    """``command`` (the root of the tree ``main()`` runs) with its usage errors translated."""
    command.make_context = _translating(command.make_context)  # type: ignore[method-assign]
    command.invoke = _translating(command.invoke)  # type: ignore[method-assign]
    return command


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except UsageError as exc:
            if isinstance(exc, NoArgsIsHelpError | TranslatedUsageError):
                raise
            _speak_as_the_proven_user()
            raise TranslatedUsageError(
                usage_message(exc), exc.ctx, exc.exit_code
            ) from exc.__cause__

    return translated


def _speak_as_the_proven_user() -> None:
    """Speak the language of the user this terminal already proves (a login, CXDESK_TOKEN;
    ``CXDESK_USER`` picks among several), as the command would have: a usage error comes
    before its ``--as`` is read. Without one (or without a usable desk), the environment's."""
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from cxdesk.cli.common import raw_engine, speak_as
    from cxdesk.cli.identity import proven_identities
    from cxdesk.errors import DeskError

    try:
        engine = raw_engine()
        proofs, _problems = proven_identities(engine)
    except (DeskError, SQLAlchemyError, OSError):
        return
    wanted = os.environ.get("CXDESK_USER")
    if wanted in proofs:
        speak_as(engine, proofs[wanted].user)
    elif wanted is None and len(proofs) == 1:
        speak_as(engine, next(iter(proofs.values())).user)


def usage_message(exc: UsageError) -> str:
    """``exc``'s message in the current language (as Typer wrote it when unknown)."""
    if isinstance(exc, NoSuchOption):
        message = _("No such option: {option}").format(option=exc.option_name)
        if exc.possibilities:
            options = ", ".join(sorted(exc.possibilities))
            message += " " + _("(Possible options: {options})").format(options=options)
        return message
    if isinstance(exc, BadOptionUsage):
        return _bad_option_usage(exc)
    if isinstance(exc, MissingParameter):
        return _missing(exc)
    if isinstance(exc, BadParameter):
        return _invalid(exc)
    if match := _EXTRA_ARGUMENTS.fullmatch(exc.message):
        arguments = match["arguments"]
        return ngettext(
            "Got an unexpected extra argument ({arguments})",
            "Got unexpected extra arguments ({arguments})",
            len(arguments.split()),
        ).format(arguments=arguments)
    if match := _SUGGESTION.fullmatch(exc.message):  # "No such command 'x'" is Typer's _()
        return _("{message}. Did you mean {suggestions}?").format(
            message=match["message"], suggestions=match["suggestions"]
        )
    return exc.message


def _bad_option_usage(exc: BadOptionUsage) -> str:
    option = exc.option_name
    if exc.message == f"Option {option!r} requires an argument.":
        return _("Option '{option}' needs a value.").format(option=option)
    if exc.message == f"Option {option!r} does not take a value.":
        return _("Option '{option}' does not take a value.").format(option=option)
    if match := re.fullmatch(
        rf"Option {re.escape(repr(option))} requires (\d+) arguments\.", exc.message
    ):
        n = int(match[1])
        return ngettext(
            "Option '{option}' needs {n} value.", "Option '{option}' needs {n} values.", n
        ).format(option=option, n=n)
    return exc.message


def _parameter_hint(exc: BadParameter) -> str | None:
    if exc.param_hint is not None:
        hint = exc.param_hint
        return hint if isinstance(hint, str) else " / ".join(repr(part) for part in hint)
    return exc.param.get_error_hint() if exc.param is not None else None


def _missing(exc: MissingParameter) -> str:
    hint = _parameter_hint(exc) or ""
    kind = exc.param_type or (exc.param.param_type_name if exc.param is not None else "")
    if kind == "option":
        message = _("Missing option {name}.").format(name=hint)
    elif kind == "argument":
        message = _("Missing argument {name}.").format(name=hint)
    else:
        message = _("Missing parameter {name}.").format(name=hint)
    choices = _choices(exc)
    if choices:
        message += " " + _("Choose from: {choices}.").format(choices=choices)
    return message


def _choices(exc: BadParameter) -> str | None:
    descriptor = getattr(exc.param, "type_descriptor", None)
    if descriptor is None or not descriptor.is_choice or not descriptor.choices:
        return None
    return ", ".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices)


def _invalid(exc: BadParameter) -> str:
    reason = _reason(exc)
    hint = _parameter_hint(exc)
    if hint is None:
        return _("Invalid value: {reason}").format(reason=reason)
    return _("Invalid value for {name}: {reason}").format(name=hint, reason=reason)


def _reason(exc: BadParameter) -> str:
    """Why the value was refused, in the current language when pydantic's error type is
    known (an integer that is not one, out of range, not a choice)."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return exc.message
    try:
        error = errors()[0]
    except (IndexError, TypeError):
        return exc.message
    value = repr(error.get("input"))
    kind = error.get("type", "")
    if (choices := _choices(exc)) is not None and kind in ("value_error", "enum", "literal_error"):
        return _("{value} is not one of: {choices}").format(value=value, choices=choices)
    if kind in _PYDANTIC_REASONS:
        limit = (error.get("ctx") or {}).get(_LIMITS.get(kind, "lt"), "")
        return _(_PYDANTIC_REASONS[kind]).format(value=value, limit=limit)
    return exc.message
