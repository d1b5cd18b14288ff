"""Communities: creating and configuring them, their moderators, members joining.

Every change that staff, an owner or a moderator makes is written to the audit log in
the same transaction (services/audit.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import DateTime, delete, func, literal, select, union_all, update
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import (
    Community,
    CommunityBan,
    CommunityMember,
    CommunityModerator,
    User,
    utcnow,
)
from ideaboard.models.community import ACCENT_DEFAULT, SLUG_MAX
from ideaboard.permissions import (
    Standing,
    can_create_community,
    can_join_community,
    can_manage_community,
)

from . import audit
from .errors import NotAllowed, NotFound, ValidationError
from .text import check_text, clean_line

SLUG_RE = re.compile(rf"^[a-z0-9](?:[a-z0-9-]{{0,{SLUG_MAX - 2}}}[a-z0-9])?$")
ACCENT_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
NAME_MAX = 80
DESCRIPTION_MAX = 2_000
RULES_MAX = 10_000
PER_PAGE = 30


# --- standing ----------------------------------------------------------------------


def load_standing(user_id: int) -> Standing:
    """The member's standing in every community, in one statement: communities they
    moderate, joined (and whether approved there), and bans not lifted."""
    mods = select(
        literal("m").label("k"),
        CommunityModerator.community_id.label("cid"),
        literal(None, DateTime()).label("at"),
    ).where(CommunityModerator.user_id == user_id)
    joined = select(literal("j"), CommunityMember.community_id, CommunityMember.approved_at).where(
        CommunityMember.user_id == user_id
    )
    bans = select(literal("b"), CommunityBan.community_id, CommunityBan.expires_at).where(
        CommunityBan.user_id == user_id, CommunityBan.lifted_at.is_(None)
    )
    moderates, member, approved, banned = set(), set(), set(), []
    for kind, cid, at in db.session.execute(union_all(mods, joined, bans)):
        if kind == "m":
            moderates.add(cid)
        elif kind == "j":
            member.add(cid)
            if at is not None:
                approved.add(cid)
        else:
            banned.append((cid, at))
    return Standing(frozenset(moderates), frozenset(member), frozenset(approved), tuple(banned))


permissions.use_standing_loader(load_standing)


# --- reading -----------------------------------------------------------------------


def get_by_slug(slug: str) -> Community | None:
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        return None
    return db.session.scalar(select(Community).where(Community.slug == slug))


def get_or_404(slug: str) -> Community:
    community = get_by_slug(slug)
    if community is None:
        raise NotFound(_("This community does not exist."))
    return community


@dataclass
class Directory:
    communities: list[Community]
    page: int
    more: bool


def directory(page: int = 1, include_archived: bool = False) -> Directory:
    """Communities, most recent activity first, one page."""
    page = min(max(page, 1), 10_000)
    stmt = select(Community).order_by(Community.last_activity_at.desc(), Community.id.desc())
    if not include_archived:
        stmt = stmt.where(Community.archived_at.is_(None))
    rows = list(db.session.scalars(stmt.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return Directory(rows[:PER_PAGE], page, len(rows) > PER_PAGE)


def moderators(community: Community) -> list[User]:
    """The community's appointed moderators, by name."""
    return list(
        db.session.scalars(
            select(User)
            .join(CommunityModerator, CommunityModerator.user_id == User.id)
            .where(CommunityModerator.community_id == community.id)
            .order_by(User.display_name, User.id)
        )
    )


def moderated_by(user: User) -> list[Community]:
    """Communities the user may moderate: all for staff, else appointed or owned."""
    stmt = select(Community).order_by(Community.name, Community.id)
    if not permissions.is_staff(user):
        ids = permissions.standing(user).moderates
        stmt = stmt.where((Community.id.in_(ids)) | (Community.owner_id == user.id))
    return list(db.session.scalars(stmt))


# --- creating and configuring --------------------------------------------------------


def _check(errors: dict[str, str], name: str, description: str, rules: str, accent: str) -> None:
    check_text(errors, "name", name, minimum=2, maximum=NAME_MAX, label=_("Name"))
    check_text(
        errors,
        "description",
        description,
        minimum=0,
        maximum=DESCRIPTION_MAX,
        label=_("Description"),
    )
    check_text(errors, "rules", rules, minimum=0, maximum=RULES_MAX, label=_("Rules"))
    if not ACCENT_RE.match(accent):
        errors["accent"] = _("Use a colour like #2f6fde.")


def create_community(
    actor: User | None,
    slug: str,
    name: str,
    description: str = "",
    rules: str = "",
    accent: str = ACCENT_DEFAULT,
    owner: User | None = None,
    require_approval: bool = False,
) -> Community:
    """Add a community; `actor` None is the command line (an operator)."""
    if actor is not None and not can_create_community(actor):
        raise NotAllowed(_("Only admins create communities."))
    slug = (slug or "").strip().lower()
    name, accent = clean_line(name), (accent or ACCENT_DEFAULT).strip()
    description, rules = (description or "").strip(), (rules or "").strip()
    errors: dict[str, str] = {}
    if not SLUG_RE.match(slug):
        errors["slug"] = _("Use lowercase letters, digits and dashes (1-40 characters).")
    elif get_by_slug(slug) is not None:
        errors["slug"] = _("A community with this address already exists.")
    _check(errors, name, description, rules, accent)
    if errors:
        raise ValidationError(errors)
    community = Community(
        slug=slug,
        name=name,
        description=description,
        rules=rules,
        accent=accent.lower(),
        owner_id=owner.id if owner else None,
        require_approval=require_approval,
        last_activity_at=utcnow(),
    )
    db.session.add(community)
    db.session.flush()
    audit.record(
        actor,
        "community.create",
        "community",
        community.id,
        community_id=community.id,
        after={"slug": slug, "name": name, "owner_id": community.owner_id},
    )
    return community


def update_community(
    actor: User,
    community: Community,
    *,
    name: str,
    description: str,
    rules: str,
    accent: str,
    require_approval: bool,
) -> Community:
    """Change a community's name, description, rules, accent and approval setting."""
    if not can_manage_community(actor, community):
        raise NotAllowed(_("Only admins and the community's owner change its settings."))
    name, accent = clean_line(name), (accent or "").strip()
    description, rules = (description or "").strip(), (rules or "").strip()
    errors: dict[str, str] = {}
    _check(errors, name, description, rules, accent)
    if errors:
        raise ValidationError(errors)
    fields = ("name", "description", "rules", "accent", "require_approval")
    before = {f: getattr(community, f) for f in fields}
    community.name, community.description, community.rules = name, description, rules
    community.accent, community.require_approval = accent.lower(), bool(require_approval)
    after = {f: getattr(community, f) for f in fields}
    changed = {f for f in fields if before[f] != after[f]}
    if changed:
        audit.record(
            actor,
            "community.update",
            "community",
            community.id,
            community_id=community.id,
            before={f: before[f] for f in changed},
            after={f: after[f] for f in changed},
        )
    return community


def set_owner(actor: User, community: Community, owner: User | None) -> Community:
    """Give the community an owner (who appoints its moderators), or none: admins only."""
    if not permissions.can_manage_site(actor):
        raise NotAllowed(_("Only admins choose a community's owner."))
    before = community.owner_id
    community.owner_id = owner.id if owner else None
    audit.record(
        actor,
        "community.owner",
        "community",
        community.id,
        community_id=community.id,
        before={"owner_id": before},
        after={"owner_id": community.owner_id},
    )
    return community


def set_archived(actor: User, community: Community, archived: bool) -> bool:
    """Archive a community (read-only: no new posts, not in the directory) or open it
    again: admins only. True if it changed."""
    if not can_create_community(actor):
        raise NotAllowed(_("Only admins archive communities."))
    if community.is_archived == archived:
        return False
    community.archived_at = utcnow() if archived else None
    audit.record(
        actor,
        "community.archive" if archived else "community.unarchive",
        "community",
        community.id,
        community_id=community.id,
        before={"archived": not archived},
        after={"archived": archived},
    )
    return True


def appoint_moderator(actor: User, community: Community, user: User) -> bool:
    """Make `user` a moderator of the community (once); True if they were not one."""
    if not can_manage_community(actor, community):
        raise NotAllowed(_("Only admins and the community's owner appoint moderators."))
    if user.disabled_at is not None:
        raise ValidationError({"user": _("This account is disabled.")})
    exists = db.session.scalar(
        select(CommunityModerator.id).where(
            CommunityModerator.community_id == community.id, CommunityModerator.user_id == user.id
        )
    )
    if exists:
        return False
    db.session.add(
        CommunityModerator(community_id=community.id, user_id=user.id, appointed_by_id=actor.id)
    )
    db.session.flush()
    audit.record(
        actor,
        "moderator.appoint",
        "user",
        user.id,
        community_id=community.id,
        after={"moderator": True},
    )
    permissions.forget_standing(user)
    return True


def remove_moderator(actor: User, community: Community, user: User) -> bool:
    """Take `user` off the community's moderators; True if they were one."""
    if not can_manage_community(actor, community):
        raise NotAllowed(_("Only admins and the community's owner appoint moderators."))
    gone = db.session.execute(
        delete(CommunityModerator).where(
            CommunityModerator.community_id == community.id, CommunityModerator.user_id == user.id
        )
    ).rowcount
    if gone:
        audit.record(
            actor,
            "moderator.remove",
            "user",
            user.id,
            community_id=community.id,
            before={"moderator": True},
            after={"moderator": False},
        )
        permissions.forget_standing(user)
    return bool(gone)


# --- joining ---------------------------------------------------------------------------


def _move_members(community: Community, delta: int) -> None:
    count = db.session.execute(
        update(Community)
        .where(Community.id == community.id)
        .values(member_count=Community.member_count + delta)
        .returning(Community.member_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(community, "member_count", count)


def join(actor: User, community: Community) -> bool:
    """Join (follow) the community; True if the member was not in it. A community that
    holds first posts starts them unapproved; one that does not, approved."""
    if not can_join_community(actor, community):
        raise NotAllowed(_("This community takes no new members."))
    values = {
        "community_id": community.id,
        "user_id": actor.id,
        "created_at": utcnow(),
        "approved_at": None if community.require_approval else utcnow(),
    }
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(CommunityMember).values(values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(CommunityMember).values(values).on_conflict_do_nothing()
    # RETURNING says whether this statement inserted (rowcount is not reliable here).
    added = db.session.execute(stmt.returning(CommunityMember.id)).scalar() is not None
    if added:
        _move_members(community, 1)
        permissions.forget_standing(actor)
    return bool(added)


def leave(actor: User, community: Community) -> bool:
    """Leave the community; True if the member was in it."""
    gone = db.session.execute(
        delete(CommunityMember).where(
            CommunityMember.community_id == community.id, CommunityMember.user_id == actor.id
        )
    ).rowcount
    if gone:
        _move_members(community, -1)
        permissions.forget_standing(actor)
    return bool(gone)


def set_membership(actor: User, community: Community, intent: str) -> bool:
    """Join or leave by explicit intent (a doubled post changes nothing more)."""
    if intent == "join":
        join(actor, community)
        return True
    if intent == "leave":
        leave(actor, community)
        return False
    raise ValidationError({"intent": _("Choose join or leave.")})


def member_mismatches() -> list[int]:
    """Communities whose member_count differs from their member rows (should be none)."""
    counted = (
        select(CommunityMember.community_id, func.count().label("n"))
        .group_by(CommunityMember.community_id)
        .subquery()
    )
    stmt = (
        select(Community.id)
        .outerjoin(counted, counted.c.community_id == Community.id)
        .where(Community.member_count != func.coalesce(counted.c.n, 0))
    )
    return list(db.session.scalars(stmt))
