"""Commands: `flask --app wsgi users create`, `users export`, `boards create`, `demo`,
`backup`, `restore`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import func, select

from .backup import create_private
from .extensions import db
from .models import Idea, Role, User
from .services import accounts, boards
from .services.errors import ValidationError

#: The command-line option behind each field a service names in its errors.
_OPTIONS = {
    "display_name": "--name",
    "email": "--email",
    "password": "--password",
    "role": "--role",
    "slug": "--slug",
    "name": "--name",
}


def _fail(err: ValidationError) -> None:
    for field, message in err.errors.items():
        click.echo(f"{_OPTIONS.get(field, field)}: {message}", err=True)
    sys.exit(1)


@click.group("users")
def users_cli() -> None:
    """Manage user accounts."""


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default="member")
@click.option("--password", required=True, help="The password, or - to read it from stdin.")
def create_user(email: str, display_name: str, role: str, password: str) -> None:
    """Add a user with the given role."""
    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    try:
        user = accounts.register_user(email, display_name, password, role=role)
    except ValidationError as err:
        db.session.rollback()
        _fail(err)
    db.session.commit()
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("export")
@click.option("--email", required=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON to this new file (readable by you only) instead of standard output.",
)
def export_user(email: str, output: Path | None) -> None:
    """Export one user's own data (account, ideas, comments, votes) as JSON."""
    from .services.export import export_user_data, find_user_by_email

    user = find_user_by_email(email)
    if user is None:
        click.echo(f"No user has the email {email}.", err=True)
        sys.exit(1)
    data = export_user_data(user)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    summary = (
        f"Exported {user.email}: {len(data['ideas'])} ideas, {len(data['comments'])} comments, "
        f"{len(data['votes'])} votes, {len(data['status_changes'])} status changes"
    )
    if output is None:
        click.echo(text, nl=False)
        click.echo(summary + ".", err=True)
        return
    try:
        # A new file only: an export holds personal data, so it never replaces a file nor
        # follows a link someone left at that path.
        fd = create_private(output)
    except FileExistsError:
        click.echo(
            f"Cannot write {output}: something already exists there (a file or a link); "
            "an export never replaces one. Choose another --output.",
            err=True,
        )
        sys.exit(1)
    except OSError as err:
        click.echo(f"Cannot write {output}: {err.strerror}.", err=True)
        sys.exit(1)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    click.echo(f"{summary} to {output}.")


@click.group("boards")
def boards_cli() -> None:
    """Manage boards."""


@boards_cli.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--description", default="")
def create_board(slug: str, name: str, description: str) -> None:
    """Add a board."""
    try:
        board = boards.create_board(slug, name, description)
    except ValidationError as err:
        db.session.rollback()
        _fail(err)
    db.session.commit()
    click.echo(f"Created board {board.slug} (id {board.id}).")


@click.group("communities")
def communities_cli() -> None:
    """Manage fan-club communities."""


@communities_cli.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--description", default="")
@click.option("--owner", "owner_email", default="", help="Email of the member who owns it.")
def create_community(slug: str, name: str, description: str, owner_email: str) -> None:
    """Add a community (its owner, if given, appoints its moderators)."""
    from .services import communities
    from .services.export import find_user_by_email

    owner = None
    if owner_email:
        owner = find_user_by_email(owner_email)
        if owner is None:
            click.echo(f"No account has the address {owner_email}.", err=True)
            sys.exit(1)
    try:
        community = communities.create_community(None, slug, name, description, owner=owner)
    except ValidationError as err:
        db.session.rollback()
        _fail(err)
    db.session.commit()
    click.echo(f"Created community {community.slug} (id {community.id}).")


@communities_cli.command("moderator")
@click.option("--slug", required=True)
@click.option("--email", required=True)
@click.option("--remove", is_flag=True, help="Take them off the moderators instead.")
def community_moderator(slug: str, email: str, remove: bool) -> None:
    """Appoint a moderator of a community (or remove one)."""
    from .services import communities
    from .services.export import find_user_by_email

    community = communities.get_by_slug(slug)
    user = find_user_by_email(email)
    if community is None or user is None:
        click.echo("No such community or account.", err=True)
        sys.exit(1)
    operator = _Operator()
    if remove:
        changed = communities.remove_moderator(operator, community, user)
    else:
        changed = communities.appoint_moderator(operator, community, user)
    db.session.commit()
    verb = "removed from" if remove else "appointed to"
    note = "" if changed else " (no change)"
    click.echo(f"{user.email} {verb} {community.slug}'s moderators{note}")


class _Operator:
    """The command line acting: an admin with no account (the audit log names nobody)."""

    id = None
    role = "admin"
    is_authenticated = True
    disabled_at = None


@click.command("demo")
@click.option("--force", is_flag=True, help="Add the demo even if the database has content.")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) if there is content.")
@click.option("--seed", default=7, help="Random seed, for repeatable demo data.")
@click.option(
    "--new-passwords",
    is_flag=True,
    help="Give the demo's sign-in accounts new passwords and print them (nothing else changes).",
)
def demo(force: bool, if_empty: bool, seed: int, new_passwords: bool) -> None:
    """Fill an empty database with realistic demo content."""
    from .demo import demo_sign_ins, load_demo, new_demo_passwords

    if new_passwords:
        made = new_demo_passwords()
        if not made:
            click.echo("This database has no demo accounts; load the demo first.", err=True)
            sys.exit(1)
        db.session.commit()
        click.echo("New demo passwords. Sign in with:")
        _echo_sign_ins(made)
        return
    has_content = db.session.scalar(select(func.count()).select_from(User)) or db.session.scalar(
        select(func.count()).select_from(Idea)
    )
    if has_content and if_empty and not force:
        click.echo("The database already has content; the demo is not loaded again.")
        existing = demo_sign_ins()
        if existing:
            # Only password hashes are stored: the passwords were printed at the first load.
            click.echo("The demo's accounts (passwords were printed when the demo was loaded):")
            for role, email in existing:
                click.echo(f"  {role:6} {email}")
            click.echo("Forgot them? New ones: .venv/bin/flask --app wsgi demo --new-passwords")
        else:
            click.echo("Sign in with your own accounts; to add one: flask --app wsgi users create")
        return
    if has_content and not force:
        click.echo(
            "The database already has users or ideas; use --force to add the demo.", err=True
        )
        sys.exit(1)
    accounts_made = load_demo(seed=seed, progress=click.echo)
    db.session.commit()
    click.echo("Demo loaded. Sign in with:")
    _echo_sign_ins(accounts_made)
    click.echo("(Shown once. New ones later: .venv/bin/flask --app wsgi demo --new-passwords)")


def _echo_sign_ins(made: list[tuple[str, str, str]]) -> None:
    for role, email, password in made:
        click.echo(f"  {role:6} {email}  password: {password}")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(boards_cli)
    app.cli.add_command(communities_cli)
    app.cli.add_command(demo)
    from .backup import backup_command, restore_command

    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
