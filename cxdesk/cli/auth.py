"""``cxdesk login|logout|whoami`` and ``cxdesk token create|list|revoke``: proving who acts.

How a command's identity is proven is ``cxdesk.cli.identity``; the secrets' rows are
``cxdesk.store.credentials``; the password check (timing, failure delay) ``cxdesk.store.logins``.
"""

from __future__ import annotations

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    console,
    desk_engine,
    err_console,
    print_table,
    proven_admin,
    setup_actor,
    shown_at,
    speak_as,
)
from cxdesk.cli.identity import (
    StoredSession,
    desk_key,
    desk_sessions,
    login_password,
    proven_identities,
    read_sessions,
    write_sessions,
)
from cxdesk.errors import DeskError, NotFound
from cxdesk.i18n import N_, _
from cxdesk.labels import label
from cxdesk.store import credentials
from cxdesk.store.db import read_session, transaction
from cxdesk.store.logins import check_password, login_source

token_app = typer.Typer(help=N_("API tokens for scripts (CXDESK_TOKEN)."), no_args_is_help=True)


def _remember(desk: str, username: str, secret: str | None, expires_at: str = "") -> list[str]:
    """Rewrite the session file with ``username``'s session on ``desk`` replaced (or dropped
    when ``secret`` is None); the secrets it held for that user there before."""
    kept: list[StoredSession] = []
    old: list[str] = []
    for entry in read_sessions():
        if entry.desk == desk and entry.user == username:
            old.append(entry.secret)
        else:
            kept.append(entry)
    if secret is not None:
        kept.append(StoredSession(desk, username, secret, expires_at))
    write_sessions(kept)
    return old


def login(username: str = typer.Argument(..., help=N_("Your username."))) -> None:
    """Log in: keeps a session (12 hours) in your state dir; password from
    CXDESK_LOGIN_PASSWORD or asked for."""
    engine = desk_engine()
    password = login_password(_("Password for {username}").format(username=username))
    if password is None:
        raise DeskError(_("Set CXDESK_LOGIN_PASSWORD (no terminal to ask for the password on)"))
    user = check_password(engine, username, password, source=login_source())
    speak_as(engine, user)  # the just-proven user's language, the desk's zone
    with transaction(engine) as session:
        secret, expires = credentials.start_session(session, user=user)
    old = _remember(desk_key(engine), user.username, secret, expires.isoformat())
    if old:
        with transaction(engine) as session:
            for stale in old:
                credentials.end_session(session, stale)
    console.print(
        _("Logged in as {user} ({role}) until {until}.").format(
            user=user.username, role=label(user.role), until=shown_at(expires)
        )
    )


def logout(
    username: str | None = typer.Argument(None, help=N_("Whose session; default: every one here.")),
) -> None:
    """End your session(s) on this desk, here and in the database."""
    engine = desk_engine()
    ending = [e for e in desk_sessions(engine) if username in (None, e.user)]
    if not ending:
        if username is not None:
            raise NotFound(_("{username} is not logged in here").format(username=username))
        console.print(_("Nobody is logged in here."))
        return
    with transaction(engine) as session:
        for entry in ending:
            credentials.end_session(session, entry.secret)
    secrets = {e.secret for e in ending}
    write_sessions([e for e in read_sessions() if e.secret not in secrets])
    names = ", ".join(sorted({e.user for e in ending}))
    console.print(_("Logged out {names}.").format(names=names))


def whoami() -> None:
    """Who commands can act as here, and how each is proven."""
    proofs, problems = proven_identities(desk_engine())
    if not proofs:
        if len(problems) == 1:
            raise DeskError(next(iter(problems.values())))
        raise DeskError(_("Not logged in: cxdesk login USERNAME (or set CXDESK_TOKEN)"))
    for username, proof in sorted(proofs.items()):
        console.print(
            _("{username} ({role}): {how}").format(
                username=username, role=proof.user.role, how=proof.how
            )
        )
    for problem in problems.values():
        err_console.print(_("Note: {problem}").format(problem=problem), soft_wrap=True)


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help=N_("A name for it, e.g. the script that uses it.")),
    user: str = typer.Option(..., "--user", help=N_("The user the token acts as.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Create an API token for a user (admins only); it is printed once, on stdout."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        secret = credentials.create_token(
            session, actor=setup_actor(session, admin), name=name, username=user
        )
    typer.echo(secret)
    err_console.print(
        _(
            "Token {name!r} acts as {user}: it is shown only now; scripts set "
            "CXDESK_TOKEN to it. `cxdesk token revoke` ends it."
        ).format(name=name.strip(), user=user),
        soft_wrap=True,
    )


@token_app.command("list")
def token_list(as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Every token: whose, made by whom and when, revoked when (never the secret)."""
    proven_admin(as_user)
    with read_session(desk_engine()) as session:
        rows = credentials.list_tokens(session)
    print_table(
        N_("API tokens"),
        [N_("name"), N_("user"), N_("created by"), N_("created"), N_("revoked")],
        [
            (
                r.name,
                r.user,
                r.created_by,
                shown_at(r.created_at),
                shown_at(r.revoked_at),
            )
            for r in rows
        ],  # fmt: skip
    )


@token_app.command("revoke")
def token_revoke(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Revoke a token: the next command showing it is refused."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        credentials.revoke_token(session, actor=setup_actor(session, admin), name=name)
    console.print(_("Token {name!r} revoked.").format(name=name))


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.add_typer(token_app, name="token")
