"""Accounts: registration, sign-in, roles, passwords, email changes and password resets."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from datetime import datetime
from importlib import resources

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from ideaboard import outbox
from ideaboard.clock import now
from ideaboard.extensions import db
from ideaboard.models import AccountToken, OutboxMessage, OutboxStatus, Role, User
from ideaboard.models.user import new_session_token
from ideaboard.permissions import can_change_role, is_admin
from ideaboard.seclog import security_event

from .errors import DomainError, NotAllowed, ValidationError
from .names import check_display_name
from .text import check_text, clean_line, fold_key

PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 60
# scrypt with OWASP's parameters (N=2^17, r=8, p=1); werkzeug writes them into the hash.
PASSWORD_METHOD = "scrypt:131072:8:1"
#: The 30,000 most common passwords (zxcvbn's list; source and licence in the file).
COMMON_PASSWORDS_FILE = "data/common-passwords.txt"
RESET_PURPOSE = "password_reset"
VERIFY_PURPOSE = "email_verify"
VERIFY_MAIL = "verify_email"
# Verified against when the email is unknown, so both answers take the same time.
_dummy_hashes: dict[str, str] = {}


class AccountDisabled(DomainError):
    """The right password for an account an admin has disabled."""

    status_code = 403


class InvalidToken(DomainError):
    """A reset link that is unknown, used, expired, superseded or for another purpose."""

    status_code = 400


class VerifyLinkRefused(DomainError):
    """An email-confirmation link that cannot be used; `reason` says why, for the page:
    "unknown" (mistyped, tampered with, or superseded by a newer link), "used", "expired"."""

    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped top-passwords list, read once on first use."""
    text = resources.files("ideaboard").joinpath(COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


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
        errors[field] = ngettext(
            "Use at least %(num)d character.", "Use at least %(num)d characters.", PASSWORD_MIN
        )
    elif len(password) > PASSWORD_MAX:
        errors[field] = ngettext(
            "Use at most %(num)d character.", "Use at most %(num)d characters.", PASSWORD_MAX
        )
    elif password.lower() in common_passwords() or len(set(password)) < 4:
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
    check_display_name(errors, "display_name", display_name)
    check_password_rules(errors, password or "")
    if role not in {r.value for r in Role}:
        errors["role"] = _("Unknown role.")
    taken = {"email": _("An account with this email already exists. Sign in instead.")}
    if "email" not in errors and db.session.scalar(
        select(User.id).where(User.email_key == email_key(email))
    ):
        errors.update(taken)
    if errors:
        raise ValidationError(errors)
    user = _insert_user(email, display_name, hash_password(password), role, confirmed=True)
    if user is None:
        raise ValidationError(taken)
    security_event("account.registered", user_id=user.id, role=role, name=display_name)
    return user


def _insert_user(
    email: str,
    display_name: str,
    password_hash: str,
    role: str,
    *,
    confirmed: bool,
    active: bool = False,
) -> User | None:
    """Insert an account, or nothing when the address is taken (then None).

    The insert decides, not any check before it: of two sign-ups with one address at once,
    the second's insert finds the first's row (on PostgreSQL, after waiting for it to
    commit) and does nothing, and that sign-up is treated as a later one would be.
    """
    values = {
        "email": email,
        "email_key": email_key(email),
        "display_name": display_name,
        "password_hash": password_hash,
        "role": role,
    }
    if not confirmed:
        values.update(email_verified_at=None, activated_at=now() if active else None)
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return db.session.scalars(
        insert(User)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[User.email_key])
        .returning(User)
    ).first()


def sign_up(
    email: str,
    display_name: str,
    password: str,
    next_path: str = "",
    *,
    vote: str = "",
    confirm_first: bool = True,
) -> User | None:
    """Register from the public form, answering alike whether or not the address is taken.

    A new address gets an account with an unconfirmed address and a confirmation link. With
    `confirm_first` (REGISTER_CONFIRM_FIRST) the account is not active until the link is
    opened, and signs in by opening it; without, it is active at once (the view signs it in)
    and only its address waits for the link. A taken address gets no account: its owner is
    mailed that someone tried to register with it (or, if that owner never confirmed, a new
    confirmation link). Either way the password is hashed, one insert is tried and one mail
    is queued, so neither the answer nor its time tells the two apart. Returns the new
    account, or None when the address was taken. Errors in the other fields (a weak
    password, a bad name) are still raised, beside their fields: they say nothing about the
    address. `next_path` (a local path) and `vote` (an idea id, cast when the link activates
    the account) ride on the new account's link.
    """
    errors: dict[str, str] = {}
    email = _normalise_email(errors, email)
    display_name = clean_line(display_name)
    check_text(errors, "display_name", display_name, minimum=2, maximum=NAME_MAX, label=_("Name"))
    check_display_name(errors, "display_name", display_name)
    check_password_rules(errors, password or "")
    if errors:
        raise ValidationError(errors)
    password_hash = hash_password(password)  # on both branches: the same time
    user = _insert_user(
        email,
        display_name,
        password_hash,
        Role.MEMBER.value,
        confirmed=False,
        active=not confirm_first,
    )
    if user is None:
        owner = db.session.scalar(select(User).where(User.email_key == email_key(email)))
        if owner is not None:
            _tell_owner_of_sign_up(owner)
        security_event("account.register_taken", user_id=owner.id if owner else None)
        return None
    security_event("account.registered", user_id=user.id, role=user.role, name=display_name)
    if confirm_first:  # the link finishes the sign-up: it goes on where the form would
        send_verification(user, next_path=next_path, vote=vote)
    else:  # already signed in, vote cast and sent on: the link only confirms the address
        send_verification(user)
    return user


def _tell_owner_of_sign_up(owner: User) -> None:
    """Mail the owner of a taken address that someone tried to sign up with it."""
    if owner.activated_at is None:
        # Never confirmed: most likely the same person again, who lost the first mail.
        send_verification(owner)
        return
    outbox.queue_mail(
        owner.email,
        _("Someone tried to sign up to Ideaboard with your address"),
        "register_attempt",
        user_id=owner.id,
        to_name=owner.display_name,
        login_url=_link("auth.login"),
        reset_url=_link("auth.reset_request"),
    )


def authenticate(email: str, password: str) -> User | None:
    """Return the user whose email and password match, else None, in constant-ish time."""
    user = db.session.scalar(select(User).where(User.email_key == email_key(email or "")))
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        security_event("login.failed", user_id=None, level=logging.WARNING)
        return None
    if not check_password_hash(user.password_hash, password or ""):
        security_event("login.failed", user_id=user.id, level=logging.WARNING)
        return None
    if user.activated_at is None:
        # A sign-up whose link was never opened answers as a wrong password: whoever made
        # it chose the password, so anything else would tell them the address was free.
        security_event("login.inactive", user_id=user.id, level=logging.WARNING)
        return None
    if user.disabled_at is not None:
        # Said only after the right password, so the answer reveals nothing to a guesser.
        security_event("login.disabled", user_id=user.id, level=logging.WARNING)
        raise AccountDisabled(_("This account has been disabled. Contact the site's admins."))
    if not user.password_hash.startswith(_method() + "$"):
        # Parameters changed since this hash was made: upgrade it now that we know the password.
        user.password_hash = hash_password(password)
    security_event("login.success", user_id=user.id)
    return user


def change_role(actor: User, user: User, role: str) -> None:
    """Admins set roles; a role change signs the user out everywhere."""
    if not can_change_role(actor, user):
        if is_admin(actor):  # only to say why
            raise NotAllowed(_("You cannot change your own role."))
        raise NotAllowed(_("Only admins change roles."))
    if role not in {r.value for r in Role}:
        raise ValidationError({"role": _("Unknown role.")})
    user.role = role
    user.session_token = new_session_token()
    security_event("role.changed", user_id=user.id, role=role, by=actor.id)


def _invalidate_tokens(user_id: int, purpose: str, mail_kind: str) -> None:
    """End every unused token of the user for `purpose`; drop its mail not yet sent."""
    moment = now()
    db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.user_id == user_id,
            OutboxMessage.kind == mail_kind,
            OutboxMessage.status == OutboxStatus.QUEUED,
        )
        .values(status=OutboxStatus.DROPPED, text_body="", html_body="")
        .execution_options(synchronize_session=False)
    )


def _invalidate_reset_tokens(user_id: int) -> None:
    """End every unused reset token of the user and drop reset mail not yet sent."""
    _invalidate_tokens(user_id, RESET_PURPOSE, "password_reset")


def _link(endpoint: str, **values) -> str:
    """An absolute link from BASE_URL, never from the request's Host header."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["BASE_URL"] + path


def _set_password(user: User, password: str) -> None:
    """Store a new password; every session, remember-me cookie and reset link ends."""
    user.password_hash = hash_password(password)
    user.session_token = new_session_token()
    _invalidate_reset_tokens(user.id)
    outbox.queue_mail(
        user.email,
        _("Your Ideaboard password was changed"),
        "password_changed",
        user_id=user.id,
        to_name=user.display_name,
        reset_url=_link("auth.reset_request"),
    )


def set_password(user: User, new: str) -> None:
    """Set a password without the current one (the operator's command line); sessions end."""
    errors: dict[str, str] = {}
    check_password_rules(errors, new or "")
    if errors:
        raise ValidationError(errors)
    _set_password(user, new)
    security_event("password.set_by_operator", user_id=user.id)


def change_password(user: User, current: str, new: str) -> None:
    """Change a password given the current one; every other session ends; mail says so."""
    errors: dict[str, str] = {}
    if not check_password_hash(user.password_hash, current or ""):
        errors["current_password"] = _("That is not your current password.")
        security_event("password.change_failed", user_id=user.id, level=logging.WARNING)
    check_password_rules(errors, new or "", field="new_password")
    if errors:
        raise ValidationError(errors)
    _set_password(user, new)
    security_event("password.changed", user_id=user.id)


def update_account(user: User, display_name: str, email: str, current_password: str) -> None:
    """Change the display name, and the email given the current password (old address told)."""
    errors: dict[str, str] = {}
    display_name = clean_line(display_name)
    check_text(errors, "display_name", display_name, minimum=2, maximum=NAME_MAX, label=_("Name"))
    check_display_name(errors, "display_name", display_name, user=user)
    new_email = _normalise_email(errors, email)
    email_changes = "email" not in errors and new_email != user.email
    if email_changes:
        if not current_password:
            errors["current_password"] = _("Enter your current password to change your email.")
        elif not check_password_hash(user.password_hash, current_password):
            errors["current_password"] = _("That is not your current password.")
            security_event("email.change_failed", user_id=user.id, level=logging.WARNING)
        elif email_key(new_email) != user.email_key and db.session.scalar(
            select(User.id).where(User.email_key == email_key(new_email))
        ):
            errors["email"] = _("An account with this email already exists.")
    if errors:
        raise ValidationError(errors)
    user.display_name = display_name
    if email_changes:
        old_email = user.email
        _claim_email(user, new_email)
        _invalidate_reset_tokens(user.id)  # links sent to the old address die with it
        # The new address is unconfirmed until its link is opened; the old one's pending
        # link (if any) dies in send_verification, so it cannot confirm the new address.
        user.email_verified_at = None
        send_verification(user)
        outbox.queue_mail(
            old_email,
            _("Your Ideaboard email address was changed"),
            "email_changed",
            user_id=user.id,
            to_name=user.display_name,
            new_email=new_email,
        )
        security_event("email.changed", user_id=user.id)
    db.session.flush()


def _claim_email(user: User, new_email: str) -> None:
    """Give the user `new_email`, unless another account holds it when this statement runs.

    The check above was read earlier; this UPDATE decides. Two members taking one address
    at once: on SQLite writers queue at the writer gate, so the second one's statement sees
    the first's row; on PostgreSQL a transaction-scoped lock on the address makes the
    second wait for the first to commit, and its statement then sees the row.
    """
    key = email_key(new_email)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("email:" + key))))
    other = aliased(User)
    claimed = db.session.execute(
        update(User)
        .where(User.id == user.id, ~exists().where(other.email_key == key, other.id != user.id))
        .values(email=new_email, email_key=key)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        raise ValidationError({"email": _("An account with this email already exists.")})
    set_committed_value(user, "email", new_email)
    set_committed_value(user, "email_key", key)


def sign_out_everywhere(user: User) -> None:
    """End every session and remember-me cookie of the user (the caller starts a new one)."""
    user.session_token = new_session_token()
    security_event("sessions.revoked", user_id=user.id)


# --- password reset (OWASP Forgot Password Cheat Sheet) ------------------------------


def token_digest(raw: str) -> str:
    """What the database keeps of a token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def request_password_reset(email: str) -> None:
    """Queue a reset mail for `email`: the same work whether or not an account has it.

    The token and the message are made at delivery, after the response, so the request
    writes one outbox row either way; for an address with no account, nothing is sent.
    """
    errors: dict[str, str] = {}
    email = _normalise_email(errors, email)
    if errors:
        raise ValidationError(errors)
    user_id = db.session.scalar(select(User.id).where(User.email_key == email_key(email)))
    outbox.queue_reset_request(email, user_id)
    security_event("password_reset.requested", user_id=user_id)


def issue_reset_token(user: User) -> tuple[str, datetime]:
    """A new reset token for `user` (older ones die); return it and its expiry."""
    _invalidate_reset_tokens(user.id)
    raw = secrets.token_urlsafe(32)
    moment = now()
    expires = moment + current_app.config["RESET_TOKEN_TTL"]
    db.session.add(
        AccountToken(
            user_id=user.id,
            purpose=RESET_PURPOSE,
            token_hash=token_digest(raw),
            created_at=moment,
            expires_at=expires,
        )
    )
    db.session.flush()
    return raw, expires


def prepare_reset_message(row: OutboxMessage) -> bool:
    """Turn a queued reset request into the reset mail; False when no account has it."""
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is None:
        return False
    raw, expires = issue_reset_token(user)
    minutes = int(current_app.config["RESET_TOKEN_TTL"].total_seconds() // 60)
    subject = _("Reset your Ideaboard password")
    text, html = outbox.render_mail(
        "password_reset",
        to_name=user.display_name,
        link=_link("auth.reset_password", token=raw),
        minutes=minutes,
    )
    row.kind = "password_reset"
    row.to_addr = user.email
    row.to_name = outbox.header_text(user.display_name)[:120]
    row.subject = outbox.header_text(subject)
    row.text_body, row.html_body = text, html
    row.expires_at = expires
    return True


def _stored_token(raw: str, purpose: str) -> AccountToken | None:
    """The token row `raw` stands for (used or not), else None (other purposes too)."""
    if not raw or len(raw) > 128:
        return None
    return db.session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == token_digest(raw), AccountToken.purpose == purpose
        )
    )


def find_reset_token(raw: str) -> AccountToken | None:
    """The live reset token `raw` stands for, else None (wrong purpose counts as unknown)."""
    token = _stored_token(raw, RESET_PURPOSE)
    if token is None or token.used_at is not None or token.expires_at <= now():
        return None
    return token


def reset_password(raw: str, password: str) -> User:
    """Set a new password with a reset token, once; every session of the user ends."""
    token = find_reset_token(raw)
    if token is None:
        security_event("password_reset.invalid_token", user_id=None, level=logging.WARNING)
        raise InvalidToken(_("This link is invalid or has expired."))
    errors: dict[str, str] = {}
    check_password_rules(errors, password or "")
    if errors:
        raise ValidationError(errors)  # the token stays usable for a better password
    moment = now()
    claimed = db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.id == token.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > moment,
        )
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:  # another request used it a moment ago
        raise InvalidToken(_("This link is invalid or has expired."))
    user = db.session.get(User, token.user_id)
    _set_password(user, password)
    # The link reached the account's current address (an email change kills older links):
    # that confirms the address, and is the way back in for a sign-up whose link was lost.
    if user.email_verified_at is None:
        user.email_verified_at = moment
        _invalidate_tokens(user.id, VERIFY_PURPOSE, VERIFY_MAIL)
    if user.activated_at is None:
        user.activated_at = moment
    security_event("password_reset.used", user_id=user.id)
    return user


# --- email verification ----------------------------------------------------------------


def mail_allowed(user: User) -> bool:
    """Whether notification mail may go to the user's address: only once it is confirmed,
    and never to a disabled account. THE rule for every notification mail (instant and
    digest); account mail (resets, confirmation links, "someone tried to register") goes
    regardless. Bulk senders filter with `mail_allowed_sql()`, its twin.
    """
    return user.email_verified_at is not None and user.disabled_at is None


def mail_allowed_sql(users=None):
    """The SQL twin of `mail_allowed`, for set-based fan-out: a condition on `users` (the
    users Table, an alias of it, or the ORM class; default the class)."""
    cols = getattr(users if users is not None else User, "__table__", users).c
    return cols.email_verified_at.is_not(None) & cols.disabled_at.is_(None)


def verify_ttl_hours() -> int:
    return int(current_app.config["VERIFY_TOKEN_TTL"].total_seconds() // 3600)


def issue_verify_token(user: User) -> tuple[str, datetime]:
    """A new confirmation token for the user's current address (older ones die, and
    their mail not yet sent is dropped); return it and its expiry."""
    _invalidate_tokens(user.id, VERIFY_PURPOSE, VERIFY_MAIL)
    raw = secrets.token_urlsafe(32)
    moment = now()
    expires = moment + current_app.config["VERIFY_TOKEN_TTL"]
    db.session.add(
        AccountToken(
            user_id=user.id,
            purpose=VERIFY_PURPOSE,
            token_hash=token_digest(raw),
            created_at=moment,
            expires_at=expires,
        )
    )
    db.session.flush()
    return raw, expires


def send_verification(user: User, next_path: str = "", vote: str = "") -> None:
    """Mail a new confirmation link to the user's current address (older links die);
    `next_path`, a local path checked by the caller, is where the link leads after;
    `vote`, an idea id, is the vote the link casts when it activates the account."""
    raw, expires = issue_verify_token(user)
    query = {"next": next_path} if next_path else {}
    if vote and str(vote).isdigit() and len(str(vote)) <= 10:
        query["vote"] = str(vote)
    outbox.queue_mail(
        user.email,
        _("Confirm your email address for Ideaboard"),
        VERIFY_MAIL,
        user_id=user.id,
        to_name=user.display_name,
        expires_at=expires,
        link=_link("auth.verify_email", token=raw, **query),
        hours=verify_ttl_hours(),
        new_account=user.activated_at is None,
    )
    security_event("email.verification_sent", user_id=user.id)


def check_verify_token(raw: str) -> AccountToken:
    """The live confirmation token `raw` stands for; else VerifyLinkRefused saying why."""
    token = _stored_token(raw, VERIFY_PURPOSE)
    if token is None:
        raise VerifyLinkRefused("unknown")
    if token.used_at is not None:
        # Used, or superseded (a newer link, an email change): "used" only when it
        # confirmed the address the account still has.
        user = db.session.get(User, token.user_id)
        confirmed = user.email_verified_at
        if confirmed is not None and confirmed == token.used_at:
            raise VerifyLinkRefused("used")
        raise VerifyLinkRefused("unknown")
    if token.expires_at <= now():
        raise VerifyLinkRefused("expired")
    return token


def verify_email(raw: str) -> tuple[User, bool]:
    """Confirm the address a link was sent to, once; return the user and whether this
    activated the account (its first confirmation: the view signs it in then)."""
    token = check_verify_token(raw)
    moment = now()
    # The claim decides: of two clicks at once one wins; an email change meanwhile has
    # already set used_at on this token, so a link to an old address confirms nothing.
    claimed = db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.id == token.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > moment,
        )
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        security_event("email.verify_refused", user_id=token.user_id, level=logging.WARNING)
        raise VerifyLinkRefused("used")
    user = db.session.get(User, token.user_id)
    user.email_verified_at = moment
    activated = user.activated_at is None
    if activated:
        user.activated_at = moment
    security_event("email.verified", user_id=user.id, activated=activated)
    return user, activated


def resend_verification(user: User) -> bool:
    """Send the signed-in user a new confirmation link; False when already confirmed."""
    if user.email_verified_at is not None:
        return False
    send_verification(user)
    return True
