"""`tuike users create-operator | reset-password`: portal users from the command line.

The shared helpers (settings, one-line failures, the database) live in ``main``; they are
imported when a command runs, since ``main`` imports this module to register it.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

users_app = typer.Typer(help="Portal users: operators, lost passwords.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts); "
        "otherwise it is asked for, twice, on the terminal.",
    ),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        from tuike.cli.main import _fail

        raise _fail("no terminal to ask the password on: pass --password-stdin and pipe it in")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create-operator")
def users_create_operator(
    email: Annotated[str, typer.Option(help="The operator's email address (the login).")],
    name: Annotated[str, typer.Option(help="Display name (default: the email address).")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an operator user who signs in to the operator console (/operator)."""
    from tuike.cli.main import _database, console
    from tuike.services import audit
    from tuike.services.users import check_password, create_user

    password = _read_password(password_stdin)
    with _database() as db:
        check_password(password)  # before the database, for a clear reason
        with db.write() as conn:
            user_id = create_user(
                conn, email=email, password=password, role="operator", owner_id=None, name=name
            )
            audit.record(conn, "cli", "user.create_operator", f"user:{user_id}")
    console.print(f"operator {email.strip().lower()} created (user {user_id})", highlight=False)


@users_app.command("reset-password")
def users_reset_password(
    email: Annotated[str, typer.Option(help="The email address of the user.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (any role) and end their sessions; no mail is sent."""
    from tuike.cli.main import _database, console
    from tuike.domain.errors import NotFound
    from tuike.services import audit
    from tuike.services.users import check_password, find_user, set_password

    password = _read_password(password_stdin)
    with _database() as db:
        check_password(password)
        with db.write() as conn:
            user = find_user(conn, email)
            if user is None:
                raise NotFound(f"user {email.strip().lower()!r}")
            set_password(conn, user.id, password)
            audit.record(conn, "cli", "user.reset_password", user.ref)
    console.print(f"password of {user.email} set; their sessions ended", highlight=False)
