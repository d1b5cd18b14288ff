"""People who use the board, and their roles."""

from __future__ import annotations

import enum
import secrets
import unicodedata
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, event, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content, utcnow


class Role(enum.StrEnum):
    MEMBER = "member"
    MODERATOR = "moderator"
    STAFF = "staff"
    ADMIN = "admin"


#: The roles that run the roadmap: permissions.is_staff() is the rule; models read it here.
STAFF_ROLES = (Role.STAFF.value, Role.ADMIN.value)


def new_session_token() -> str:
    return secrets.token_urlsafe(16)


SEARCH_NAME_MAX = 180  # casefold can lengthen a 60-character name ("ß" -> "ss")


def search_name_of(display_name: str | None) -> str:
    """The form of a display name that member search matches a prefix against: NFKC and
    casefolded, as services.text.fold_key (not imported: models stay below services)."""
    return unicodedata.normalize("NFKC", display_name or "").casefold().strip()[:SEARCH_NAME_MAX]


def _search_name_default(context) -> str:
    return search_name_of(context.get_current_parameters().get("display_name"))


#: On PostgreSQL the search column compares bytewise ("C"), so `LIKE 'prefix%'` and
#: ORDER BY both use its plain b-tree index whatever the database's own collation.
SearchName = String(SEARCH_NAME_MAX).with_variant(
    String(SEARCH_NAME_MAX, collation="C"), "postgresql"
)


class User(UserMixin, CreatedMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('member', 'moderator', 'staff', 'admin')", name="role_known"),
        # Member search (admin area): a name prefix, ordered by name; an email prefix
        # (varchar_pattern_ops lets LIKE 'prefix%' use it under any collation).
        Index("ix_users_search_name", "search_name", "id"),
        Index(
            "ix_users_email_prefix",
            "email_key",
            postgresql_ops={"email_key": "varchar_pattern_ops"},
        ),
        page_content(True),  # names and roles show beside everything people write
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    # NFKC + casefold of the email: the uniqueness key, so "A@x" and "a@x" are one account.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER.value)
    # Part of the login id: changing it signs the user out everywhere (password change, demotion).
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    # The user's latest idea as a digest of its title and text, and when it was posted. The
    # UPDATE that records a new post decides whether it repeats the last one (a double
    # submit), so two identical submits at once make one idea (services.ideas).
    last_idea_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    last_idea_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # Kept in step with display_name (column default on insert, an attribute event on
    # change): what member search compares. Never shown.
    search_name: Mapped[str] = mapped_column(
        SearchName, default=_search_name_default, server_default=text("''")
    )
    # Set by an admin: the account cannot sign in, and its sessions ended when it was set.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # When the current address was confirmed by an emailed link; None while it is not (a
    # sign-up from the form, or just after an email change): no notification mail goes to
    # it. Accounts made by an operator (command line, demo, seed) start confirmed.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(), default=utcnow)
    # When the account's first address was confirmed: a sign-up from the form cannot sign
    # in with its password before (services.accounts.sign_up says why).
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(), default=utcnow)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_staff(self) -> bool:
        """permissions.is_staff() of a signed-in user (for code that holds a User)."""
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


@event.listens_for(User.display_name, "set")
def _keep_search_name(user: User, value: str | None, _old, _initiator) -> None:
    user.search_name = search_name_of(value)


class AccountToken(CreatedMixin, Base):
    """A one-time secret sent to a user's address (a password reset link).

    Only the SHA-256 of the token is kept: the database never holds a usable link. A token
    is bound to one user and one purpose, and dies when used, when it expires, or when
    something newer (another token, a password change) makes it stale.
    """

    __tablename__ = "account_tokens"
    __table_args__ = page_content(False)  # only the hash of a link sent by mail

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime())
    used_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
