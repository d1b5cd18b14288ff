"""Accounts: registration, sign-in, roles."""

from __future__ import annotations

import logging

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ideaboard.extensions import db
from ideaboard.models import Role, User
from ideaboard.models.user import new_session_token

from .errors import NotAllowed, ValidationError
from .text import check_text, clean_line, fold_key

log = logging.getLogger("ideaboard.security")

PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 60
# scrypt with OWASP's parameters (N=2^17, r=8, p=1); werkzeug writes them into the hash.
PASSWORD_METHOD = "scrypt:131072:8:1"
# A few of the most common passwords (SecLists top list); longer lists come with issue 4.
COMMON_PASSWORDS = frozenset(
    """123456789012 1234567890 qwertyuiop password123 password1234 iloveyou123
    qwerty123456 1q2w3e4r5t 1qaz2wsx3edc administrator passw0rd12 letmein123
    qwertyuiop123 abcdefghij 0123456789 1111111111 0000000000 9876543210
    welcome123 changeme123 ideaboard123""".split()
)
# Verified against when the email is unknown, so both answers take the same time.
_dummy_hashes: dict[str, str] = {}


def email_key(email: str) -> str:
    return fold_key(email)


def _method() -> str:
    # Tests use cheaper parameters through PASSWORD_HASH_METHOD; production keeps OWASP's.
    return current_app.config.get("PASSWORD_HASH_METHOD", PASSWORD_METHOD)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=_method())


def _dummy_hash() -> str:
    method = _method()
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash("not-a-real-password", method=method)
    return _dummy_hashes[method]


def check_password_rules(errors: dict[str, str], password: str, field: str = "password") -> None:
    """Length, not a well-known password; no composition rules (NIST 800-63B)."""
    if len(password) < PASSWORD_MIN:
        errors[field] = _("Use at least %(n)d characters.", n=PASSWORD_MIN)
    elif len(password) > PASSWORD_MAX:
        errors[field] = _("Use at most %(n)d characters.", n=PASSWORD_MAX)
    elif password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        errors[field] = _("This password is too easy to guess; choose another.")


def _normalise_email(errors: dict[str, str], email: str) -> str:
    email = (email or "").strip()
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = _("Enter a valid email address.")
        return email


def register_user(
    email: str, display_name: str, password: str, role: str = Role.MEMBER.value
) -> User:
    """Create an account, refusing a taken email, a weak password or a bad name."""
    errors: dict[str, str] = {}
    email = _normalise_email(errors, email)
    display_name = clean_line(display_name)
    check_text(errors, "display_name", display_name, minimum=2, maximum=NAME_MAX, label=_("Name"))
    check_password_rules(errors, password or "")
    if role not in {r.value for r in Role}:
        errors["role"] = _("Unknown role.")
    if "email" not in errors and db.session.scalar(
        select(User.id).where(User.email_key == email_key(email))
    ):
        errors["email"] = _("An account with this email already exists. Sign in instead.")
    if errors:
        raise ValidationError(errors)
    user = User(
        email=email,
        email_key=email_key(email),
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
    )
    db.session.add(user)
    db.session.flush()
    log.info("account created user_id=%s role=%s", user.id, role)
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the user whose email and password match, else None, in constant-ish time."""
    user = db.session.scalar(select(User).where(User.email_key == email_key(email or "")))
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    if not user.password_hash.startswith(_method() + "$"):
        # Parameters changed since this hash was made: upgrade it now that we know the password.
        user.password_hash = hash_password(password)
    return user


def change_role(actor: User, user: User, role: str) -> None:
    """Admins set roles; a role change signs the user out everywhere."""
    if not actor.is_admin:
        raise NotAllowed(_("Only admins change roles."))
    if role not in {r.value for r in Role}:
        raise ValidationError({"role": _("Unknown role.")})
    if user.id == actor.id:
        raise NotAllowed(_("You cannot change your own role."))
    user.role = role
    user.session_token = new_session_token()
    log.info("role changed user_id=%s role=%s by=%s", user.id, role, actor.id)


def change_password(user: User, current: str, new: str) -> None:
    """Change a password given the current one; every other session ends."""
    errors: dict[str, str] = {}
    if not check_password_hash(user.password_hash, current or ""):
        errors["current_password"] = _("That is not your current password.")
    check_password_rules(errors, new or "")
    if errors:
        raise ValidationError(errors)
    user.password_hash = hash_password(new)
    user.session_token = new_session_token()
