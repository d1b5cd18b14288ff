"""The route inventory: every rule of the URL map, classified by hand.

The security tests are driven from this table (CSRF, GET safety, the authorisation
matrix, mass assignment, headers, request size, rate limits, CORS, Host), so a route
cannot skip them: tests/test_route_inventory.py fails, naming the endpoint, as soon as
the URL map has an endpoint this table lacks (or the table names one that is gone).

Adding a route: add a Route row below (who may call it, what its URL names, whose that
object is, its rate limits, whether it is an auth page), a POST form in FORMS if it
accepts POST, and run `pytest tests/test_route_inventory.py tests/test_route_security.py
tests/test_authz_matrix.py`.

The policy here is written by hand on purpose: it is the oracle the app's own
permissions.py is checked against, not a copy of it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import url_for

from ideaboard.extensions import db
from ideaboard.models import (
    Board,
    Comment,
    Community,
    CommunityBan,
    CommunityModerator,
    Idea,
    Reply,
    Thread,
    User,
)
from ideaboard.services import accounts, comments, communities, ideas, notification_mail, threads

from .factories import PASSWORD, general_board, make_board

# --- who may call a route -------------------------------------------------------------
ANYONE = "anyone"  # visitors too
MEMBER = "member"  # any signed-in account
OWNER_OR_STAFF = "owner-or-staff"  # the object's owner, staff and admins
AUTHOR = "author"  # the object's owner only (not even staff)
STAFF = "staff"  # staff and admins
ADMIN = "admin"  # admins only (the admin area)
#: The moderators of the target's community (World appoints "mod" to the world's
#: community), its owner, staff and admins. A moderator of another community is refused
#: (tests/test_moderation_scope.py drives that for every such route).
MODERATOR = "moderator"
#: Admins and the target community's owner (World makes "staff" the owner of the world's
#: community): its settings and moderators. Its moderators ("mod") are refused.
COMMUNITY_MANAGER = "community-manager"
#: Members other than the target's author (reporting: nobody reports what they wrote).
NOT_AUTHOR = "not-author"

#: The roles the matrix signs in as. "mod" has the moderator role and moderates the
#: world's community: outside the MODERATOR policy it gains nothing from either.
ROLES = ("anon", "a", "b", "mod", "staff", "admin")
STAFF_ROLES = {"staff", "admin"}
MEMBER_ROLES = {"a", "b", "mod", "staff", "admin"}

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Route:
    """How one endpoint may be used, by whom, and what protects it."""

    methods: tuple[str, ...]  # what its rules accept, besides HEAD and OPTIONS
    who: str = ANYONE  # who may call it: one of the policies above
    target: str | None = None  # what its URL names: idea | comment | staff-comment | board
    # | file | admin-board (a fresh board, by id) | member (a fresh member's account)
    owner: str | None = None  # the column saying whose the target is
    # On a deleted idea: hidden (404 to those who cannot see it; 403 to staff, and to its
    # author while they may restore it) | staff-may | author-may (staff and, while they may
    # restore it, the author who deleted it) | nobody (404 to everyone)
    deleted: str = "hidden"
    csrf: bool = True  # its POST needs a CSRF token (False: a documented exemption)
    limits: tuple[str, ...] = ()  # config keys of the rate limits on its POST (failures count)
    write_limits: tuple[str, ...] = ()  # per-member write throttles (successes count; staff exempt)
    auth_page: bool = False  # sign-in/up style page: Cache-Control no-store for everyone
    personal: bool = False  # a page with a person's form: no-store
    api: bool = False  # JSON under /api/
    ok: tuple[int, int] = (303, 200)  # a permitted POST answers (plain, htmx)
    ok_get: frozenset[int] = frozenset({200})  # a permitted GET answers
    content_type: str = "text/html; charset=utf-8"
    referrer: str = "strict-origin-when-cross-origin"  # its Referrer-Policy
    # A visitor's Cache-Control when it is not no-cache (feeds: shared caches may keep them)
    public_cache: str = ""
    why: str = ""

    @property
    def writes(self) -> bool:
        return bool(STATE_CHANGING & set(self.methods))


ATOM = "application/atom+xml; charset=utf-8"
FEED_CACHE = "public, max-age=300"  # the same for everyone; revalidated by ETag

#: One row per endpoint of the URL map (ideas.show has two rules; both are GET).
ROUTES: dict[str, Route] = {
    "main.home": Route(("GET",)),
    "main.healthz": Route(("GET",), content_type="text/plain; charset=utf-8"),
    "main.favicon": Route(("GET",), content_type="image/svg+xml; charset=utf-8"),
    "main.set_language": Route(
        ("POST",),
        csrf=False,
        ok=(303, 303),
        why="only sets the language cookie; a token would make visitors' pages uncacheable",
    ),
    "auth.register": Route(
        ("GET", "POST"),
        auth_page=True,
        limits=("REGISTER_LIMIT",),
        ok=(303, 303),
        ok_get=frozenset({200, 302}),  # a signed-in member is sent on
    ),
    "auth.register_sent": Route(("GET",)),
    "auth.verify_email": Route(
        ("GET", "POST"),
        target="verify-token",  # the emailed token is the credential: anyone holding it
        auth_page=True,
        referrer="no-referrer",
        ok=(303, 303),
    ),
    "auth.resend_verification": Route(
        ("POST",), who=MEMBER, limits=("VERIFY_RESEND_LIMIT",), ok=(303, 303)
    ),
    "auth.login": Route(
        ("GET", "POST"),
        auth_page=True,
        limits=("LOGIN_LIMIT_IP", "LOGIN_LIMIT_ACCOUNT"),
        ok=(422, 422),  # the matrix signs in with a wrong password: refused, never 401/403
        ok_get=frozenset({200, 302}),  # a signed-in member is sent on
    ),
    "auth.logout": Route(("POST",), who=MEMBER, ok=(303, 303)),
    "auth.account": Route(
        ("GET", "POST"), who=MEMBER, personal=True, limits=("PASSWORD_CHECK_LIMIT",), ok=(303, 303)
    ),
    "auth.change_password": Route(
        ("GET", "POST"), who=MEMBER, personal=True, limits=("PASSWORD_CHECK_LIMIT",), ok=(303, 303)
    ),
    "auth.sign_out_others": Route(("POST",), who=MEMBER, ok=(303, 303)),
    "auth.reset_request": Route(
        ("GET", "POST"),
        auth_page=True,
        limits=("RESET_LIMIT_IP", "RESET_LIMIT_ACCOUNT"),
        ok=(200, 200),  # the same "check your mail" page for every address
    ),
    "auth.reset_password": Route(
        ("GET", "POST"),
        target="reset-token",  # the emailed token is the credential: anyone holding it
        auth_page=True,
        referrer="no-referrer",
        ok=(303, 303),
    ),
    "ideas.index": Route(("GET",)),
    "ideas.board": Route(("GET",), target="board"),
    "ideas.show": Route(("GET",), target="idea", deleted="author-may"),
    "ideas.live_updates": Route(
        ("GET",),
        target="idea",
        deleted="author-may",
        ok_get=frozenset({200, 302}),  # a request without HX-Request is sent to the page
        why="an open idea page's poll: 304 while unchanged (If-None-Match), else its pieces",
    ),
    "ideas.similar": Route(
        ("GET",),
        who=MEMBER,
        personal=True,  # its buttons post the new-idea form's CSRF token
        why="suggestions under the new-idea form's title; SIMILAR_LIMIT counted in the view",
    ),
    "ideas.new": Route(
        ("GET", "POST"), who=MEMBER, personal=True, ok=(303, 303), write_limits=("IDEA_LIMIT",)
    ),
    "ideas.edit": Route(
        ("GET", "POST"),
        who=OWNER_OR_STAFF,
        target="idea",
        owner="ideas.author_id",
        personal=True,
        ok=(303, 303),
        write_limits=("EDIT_LIMIT",),
    ),
    "ideas.delete": Route(
        ("GET", "POST"),
        who=OWNER_OR_STAFF,
        target="idea",
        owner="ideas.author_id",
        personal=True,  # the confirm page holds a form
        why="GET asks for confirmation (works without JavaScript); POST deletes",
    ),
    "ideas.restore": Route(
        ("POST",),
        who=OWNER_OR_STAFF,
        target="deleted-idea",
        owner="ideas.author_id",
        deleted="author-may",
        why="staff, or the author who deleted it, for IDEA_RESTORE_DAYS",
    ),
    "ideas.vote": Route(("POST",), who=MEMBER, target="idea", write_limits=("VOTE_LIMIT",)),
    "ideas.follow": Route(
        ("POST",),
        who=MEMBER,
        target="idea",
        write_limits=("FOLLOW_LIMIT",),
        why="intent = follow | unfollow (anything else 400); idempotent",
    ),
    "ideas.comment": Route(("POST",), who=MEMBER, target="idea", write_limits=("COMMENT_LIMIT",)),
    "ideas.edit_comment": Route(
        ("GET", "POST"),
        who=AUTHOR,
        target="comment",
        owner="comments.author_id",
        personal=True,
        ok=(303, 303),
        write_limits=("EDIT_LIMIT",),
    ),
    "ideas.mark_official": Route(("POST",), who=STAFF, target="staff-comment"),
    "ideas.merge": Route(
        ("GET", "POST"),
        who=STAFF,
        target="merge-pair",
        personal=True,  # the confirm page holds a form
        why="GET finds the other idea (`into`: number or title) and asks; POST merges",
    ),
    "ideas.undo_merge": Route(
        ("GET", "POST"),
        who=STAFF,
        target="merge",
        personal=True,  # the confirm page holds a form
        why="GET shows what undo takes back; POST undoes the merge into this idea",
    ),
    "roadmap.index": Route(("GET",)),
    "roadmap.live_updates": Route(
        ("GET",),
        ok_get=frozenset({200, 302}),  # a request without HX-Request is sent to the page
        why="an open roadmap's poll: 304 while unchanged, else its columns",
    ),
    "roadmap.change_status": Route(("POST",), who=STAFF, target="idea", ok=(303, 303)),
    "api.list_ideas": Route(("GET",), api=True, content_type="application/json"),
    "api.show_idea": Route(
        ("GET",), target="idea", api=True, deleted="nobody", content_type="application/json"
    ),
    "static": Route(("GET",), target="file", content_type=""),
    "admin.index": Route(("GET",), who=ADMIN, personal=True),
    "admin.create_board": Route(("POST",), who=ADMIN, ok=(303, 303)),
    "admin.board": Route(
        ("GET", "POST"), who=ADMIN, target="admin-board", personal=True, ok=(303, 303)
    ),
    "admin.archive_board": Route(("POST",), who=ADMIN, target="admin-board", ok=(303, 303)),
    "admin.members": Route(("GET",), who=ADMIN, personal=True),
    "admin.member_role": Route(("POST",), who=ADMIN, target="member", ok=(303, 303)),
    "admin.member_access": Route(("POST",), who=ADMIN, target="member", ok=(303, 303)),
    # i13 feeds: the changelog, the Atom feeds, members' public profiles.
    "changelog.index": Route(("GET",)),
    "changelog.ideas_feed": Route(("GET",), content_type=ATOM, public_cache=FEED_CACHE),
    "changelog.board_feed": Route(
        ("GET",), target="board", content_type=ATOM, public_cache=FEED_CACHE
    ),
    "changelog.changes_feed": Route(("GET",), content_type=ATOM, public_cache=FEED_CACHE),
    "changelog.changelog_feed": Route(("GET",), content_type=ATOM, public_cache=FEED_CACHE),
    "people.profile": Route(("GET",), target="member"),
    # i13 mail: a member's email choices; the one-click unsubscribe link of every mail.
    "subscriptions.settings": Route(("GET", "POST"), who=MEMBER, personal=True, ok=(303, 303)),
    "subscriptions.unsubscribe": Route(
        ("GET", "POST"),
        target="unsubscribe-token",  # the signed token is the credential: anyone holding it
        csrf=False,
        auth_page=True,  # no-store: the URL holds the token
        referrer="no-referrer",
        ok=(200, 200),
        why="RFC 8058 one-click: the mail client posts it with no session and no CSRF "
        "token; the signed token (member + kind) is the credential, and it only turns "
        "mail off (docs/security.md)",
    ),
    "people.influence": Route(("GET",), who=MEMBER, personal=True),  # only their own: no id
    # i14 communities: the directory, a community, its threads and replies.
    "community.index": Route(("GET",)),
    # i14 search over public threads (q, page): public, like /ideas?q=.
    "community.search_threads": Route(("GET",)),
    "community.show": Route(("GET",), target="community"),
    "community.join": Route(
        ("POST",),
        who=MEMBER,
        target="community",
        write_limits=("FOLLOW_LIMIT",),
        why="intent = join | leave (anything else 400); idempotent",
    ),
    "community.new": Route(
        ("GET", "POST"),
        who=MEMBER,
        target="community",
        personal=True,
        ok=(303, 303),
        write_limits=("THREAD_LIMIT",),
    ),
    "community.thread": Route(("GET",), target="thread"),
    "community.reply": Route(
        ("POST",), who=MEMBER, target="thread", ok=(303, 303), write_limits=("REPLY_LIMIT",)
    ),
    "community.follow": Route(
        ("POST",),
        who=MEMBER,
        target="thread",
        write_limits=("FOLLOW_LIMIT",),
        why="intent = follow | unfollow (anything else 400); idempotent",
    ),
    # i14 moderation: tools on a thread and a reply, bans, settings, the audit log.
    "moderation.pin": Route(
        ("POST",), who=MODERATOR, target="thread", why="intent = pin | unpin; idempotent"
    ),
    "moderation.lock": Route(
        ("POST",), who=MODERATOR, target="thread", why="intent = lock | unlock; idempotent"
    ),
    "moderation.hide": Route(
        ("GET", "POST"),
        who=MODERATOR,
        target="thread",
        personal=True,  # the confirm page holds a form
        why="GET confirms; POST intent = hide (reason) | unhide",
    ),
    "moderation.hide_reply": Route(
        ("GET", "POST"),
        who=MODERATOR,
        target="reply",
        personal=True,
        why="GET confirms; POST intent = hide (reason) | unhide",
    ),
    "moderation.move": Route(
        ("GET", "POST"),
        who=MODERATOR,
        target="movable-thread",
        personal=True,
        why="to: a community the actor also moderates; htmx gets HX-Redirect",
    ),
    "moderation.title": Route(("GET", "POST"), who=MODERATOR, target="thread", personal=True),
    "moderation.bans": Route(
        ("GET", "POST"), who=MODERATOR, target="community", personal=True, ok=(303, 303)
    ),
    "moderation.lift": Route(("POST",), who=MODERATOR, target="community-ban", ok=(303, 303)),
    "moderation.community_log": Route(("GET",), who=MODERATOR, target="community", personal=True),
    "moderation.log": Route(("GET",), who=STAFF, personal=True),
    "moderation.settings": Route(
        ("GET", "POST"), who=COMMUNITY_MANAGER, target="community", personal=True, ok=(303, 303)
    ),
    "moderation.moderators": Route(
        ("POST",),
        who=COMMUNITY_MANAGER,
        target="community",
        ok=(303, 303),
        why="intent = appoint (member: name or email) | remove (user: id)",
    ),
    "moderation.create": Route(("POST",), who=ADMIN, ok=(303, 303)),
    "moderation.archive": Route(
        ("POST",), who=ADMIN, target="community", ok=(303, 303), why="intent = archive | unarchive"
    ),
    # i14 reports: reporting an item, the moderation queues, resolving, held posts.
    "reports.report_idea": Route(
        ("GET", "POST"),
        who=NOT_AUTHOR,
        target="idea",
        owner="ideas.author_id",
        personal=True,  # the form holds a token
        ok=(303, 200),
        write_limits=("REPORT_LIMIT",),
        why="GET the form (inline with htmx); POST files the report, once per member",
    ),
    "reports.report_comment": Route(
        ("GET", "POST"),
        who=NOT_AUTHOR,
        target="comment",
        owner="comments.author_id",
        personal=True,
        ok=(303, 200),
        write_limits=("REPORT_LIMIT",),
    ),
    "reports.report_thread": Route(
        ("GET", "POST"),
        who=NOT_AUTHOR,
        target="thread",
        owner="threads.author_id",
        personal=True,
        ok=(303, 200),
        write_limits=("REPORT_LIMIT",),
    ),
    "reports.report_reply": Route(
        ("GET", "POST"),
        who=NOT_AUTHOR,
        target="reply",
        owner="replies.author_id",
        personal=True,
        ok=(303, 200),
        write_limits=("REPORT_LIMIT",),
    ),
    "reports.queue": Route(("GET",), who=STAFF, personal=True),
    "reports.community_queue": Route(("GET",), who=MODERATOR, target="community", personal=True),
    "reports.resolve": Route(
        ("POST",),
        who=MODERATOR,
        target="reported-reply",
        why="resolution = restore | hide | dismiss, for every open report of the item; "
        "ideas and comments: staff only (tests/test_reports.py)",
    ),
    "reports.decide_held": Route(
        ("POST",),
        who=MODERATOR,
        target="held-reply",
        why="decision = approve | reject of a post held for approval",
    ),
    # i14 promotion: a thread becomes an idea; what a community's ideas became.
    "community.promote": Route(
        ("GET", "POST"),
        who=MODERATOR,
        target="thread",
        personal=True,
        ok=(303, 303),
        why="staff and the community's moderators; the idea keeps the thread's author",
    ),
    "community.changed": Route(("GET",), target="community"),
    "community.goto_thread": Route(
        ("GET",),
        target="thread",
        ok_get=frozenset({302}),
        why="a thread by number (an idea's link back): 302 to its address, 404 if not visible",
    ),
    # i13 notify: the notification centre, marking read, the header's unread count.
    "notifications.index": Route(("GET",), who=MEMBER, personal=True),
    "notifications.read": Route(
        ("POST",),
        who=MEMBER,
        why="`id` of one of the member's own (another's or none: 404), or none: all",
    ),
    "notifications.unread": Route(
        ("GET",),
        who=MEMBER,
        personal=True,
        ok_get=frozenset({200, 302}),  # htmx gets the fragment; a plain GET the centre
        why="the header's count, an htmx fragment",
    ),
}

_seq = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix} {next(_seq)}"


# --- a world of users and objects -----------------------------------------------------


_hash: dict[str, str] = {}


def quick_user(role: str, name: str) -> User:
    """A user whose password is PASSWORD, without paying for a new scrypt hash each time.

    Tests here make hundreds of users; the hash of PASSWORD is computed once per method.
    """
    method = accounts._method()
    if method not in _hash:
        _hash[method] = accounts.hash_password(PASSWORD)
    email = f"{role}{next(_seq)}@example.com"
    user = User(
        email=email,
        email_key=accounts.email_key(email),
        display_name=name,
        password_hash=_hash[method],
        role=role,
    )
    db.session.add(user)
    db.session.flush()
    return user


@dataclass
class Target:
    """The objects one URL names, made fresh for one case."""

    idea: Idea | None = None
    comment: Comment | None = None
    board: Board | None = None
    token: str | None = None
    member: User | None = None
    other: Idea | None = None  # merge-pair: the idea to merge into; merge: the merged one
    merge_id: int | None = None
    community: Community | None = None
    thread: Thread | None = None
    reply: Reply | None = None
    destination: Community | None = None  # movable-thread: where "mod" may move it
    ban_id: int | None = None  # community-ban


@dataclass
class World:
    """Two members (a, b), a moderator, staff, an admin, two boards, and a community
    that "mod" moderates (and another that nobody does)."""

    users: dict[str, User]
    general: Board
    other: Board
    community: Community | None = None
    elsewhere: Community | None = None
    made: list = field(default_factory=list)

    @classmethod
    def build(cls) -> World:
        users = {
            "a": quick_user("member", "Ann Member"),
            "b": quick_user("member", "Ben Member"),
            "mod": quick_user("moderator", "Mo Moderator"),
            "staff": quick_user("staff", "Sue Staff"),
            "admin": quick_user("admin", "Ada Admin"),
        }
        db.session.commit()
        club = communities.create_community(None, f"club-{next(_seq)}", _unique("Club"))
        elsewhere = communities.create_community(None, f"club-{next(_seq)}", _unique("Club"))
        db.session.add(CommunityModerator(community_id=club.id, user_id=users["mod"].id))
        club.owner_id = users["staff"].id  # COMMUNITY_MANAGER: admins and the owner
        db.session.commit()
        return cls(
            users=users,
            general=general_board(),
            other=make_board(),
            community=club,
            elsewhere=elsewhere,
        )

    def user(self, role: str) -> User | None:
        return self.users.get(role)

    def refresh(self) -> None:
        """Reload the users after a permitted action, their password put back to PASSWORD.

        Changing a password or signing out elsewhere gives a user a new session token;
        the next case must sign in with it.
        """
        db.session.expire_all()
        for user in self.users.values():
            db.session.refresh(user)
            if user.password_hash != _hash[accounts._method()]:
                user.password_hash = _hash[accounts._method()]
        db.session.commit()

    def target(self, route: Route, owner: str = "a", deleted: bool = False) -> Target:
        """Fresh objects for `route`'s URL, owned by `owner`; the idea deleted if asked."""
        other = "b" if owner == "a" else "a"
        kind = route.target
        if kind is None or kind == "file":
            return Target()
        if kind == "board":
            return Target(board=self.general)
        if kind == "admin-board":
            board = make_board()
            db.session.commit()
            return Target(board=board)
        if kind == "member":
            member = quick_user("member", _unique("Mia Member"))
            db.session.commit()
            return Target(member=member)
        if kind == "community":
            return Target(community=self.community)
        if kind == "community-ban":
            member = quick_user("member", _unique("Bo Banned"))
            ban = CommunityBan(community_id=self.community.id, user_id=member.id, reason="Spam")
            db.session.add(ban)
            db.session.commit()
            return Target(community=self.community, member=member, ban_id=ban.id)
        if kind == "movable-thread":
            if getattr(self, "_annex", None) is None:
                annex = communities.create_community(None, f"club-{next(_seq)}", _unique("Annex"))
                db.session.add(
                    CommunityModerator(community_id=annex.id, user_id=self.users["mod"].id)
                )
                db.session.commit()
                self._annex = annex
            thread = threads.start_thread(
                self.users[owner], self.community, _unique("Thread"), "Words"
            )
            db.session.commit()
            return Target(community=self.community, thread=thread, destination=self._annex)
        if kind in ("reported-reply", "held-reply"):
            # A reply of a fresh member's (never approved, never reported before), in the
            # community "mod" moderates: reported by another member, or held.
            author = quick_user("member", _unique("Hal Member"))
            thread = threads.start_thread(author, self.community, _unique("Thread"), "Words")
            if kind == "held-reply":
                self.community.require_approval = True
            reply = threads.add_reply(author, thread, self.community, "A reply")
            self.community.require_approval = False
            if kind == "reported-reply":
                from ideaboard.services import reports

                reporter = quick_user("member", _unique("Rae Member"))
                reports.file_report(
                    reporter, reports.load_item("reply", reply.id), "spam", "Selling things"
                )
            db.session.commit()
            return Target(community=self.community, thread=thread, reply=reply)
        if kind in ("thread", "reply"):
            thread = threads.start_thread(
                self.users[owner], self.community, _unique("Thread"), "Words"
            )
            reply = None
            if kind == "reply":
                reply = threads.add_reply(self.users[owner], thread, self.community, "A reply")
            db.session.commit()
            return Target(community=self.community, thread=thread, reply=reply)
        if kind == "reset-token":
            token, _ = accounts.issue_reset_token(self.users[owner])
            db.session.commit()
            return Target(token=token)
        if kind == "unsubscribe-token":
            return Target(
                token=notification_mail.unsubscribe_token(self.users[owner].id, "comments")
            )
        if kind == "verify-token":
            token, _ = accounts.issue_verify_token(self.users[owner])
            db.session.commit()
            return Target(token=token)
        if kind == "merge":
            # A merge of the other member's idea into the owner's, to undo.
            from ideaboard.services import merges

            into = ideas.create_idea(self.users[owner], self.general, "idea", _unique("Into"), "")
            merged = ideas.create_idea(self.users[other], self.general, "idea", _unique("Dup"), "")
            made = merges.merge_idea(self.users["staff"], merged, str(into.id))
            db.session.commit()
            return Target(idea=into, other=merged, merge_id=made.id, board=self.general)
        if kind == "comment":
            # The comment is the owner's, on the *other* member's idea: the idea's author
            # must not be able to edit it.
            idea = ideas.create_idea(self.users[other], self.general, "idea", _unique("Host"), "")
            comment = comments.add_comment(self.users[owner], idea, "The owner's comment")
        elif kind == "staff-comment":
            idea = ideas.create_idea(self.users[owner], self.general, "idea", _unique("Idea"), "")
            comment = comments.add_comment(self.users["staff"], idea, "Staff words")
        else:
            idea = ideas.create_idea(self.users[owner], self.general, "idea", _unique("Idea"), "x")
            comment = None
        if kind == "merge-pair":  # the owner's idea (merged by the form) and another
            other_idea = ideas.create_idea(
                self.users[other], self.general, "idea", _unique("Into"), ""
            )
            if deleted:
                ideas.delete_idea(self.users[owner], idea)
            db.session.commit()
            return Target(idea=idea, other=other_idea, board=self.general)
        if deleted or kind == "deleted-idea":
            ideas.delete_idea(self.users[owner] if kind != "comment" else self.users[other], idea)
        db.session.commit()
        return Target(idea=idea, comment=comment, board=self.general)


def url_args(route: Route, t: Target) -> dict:
    """The URL arguments naming `t` for `route`."""
    if route.target == "board":
        return {"slug": t.board.slug}
    if route.target == "community":
        return {"slug": t.community.slug}
    if route.target == "community-ban":
        return {"slug": t.community.slug, "ban_id": t.ban_id}
    if route.target in ("thread", "reply", "movable-thread"):
        args = {"slug": t.community.slug, "thread_id": t.thread.id}
        if route.target == "reply":
            args["reply_id"] = t.reply.id
        return args
    if route.target in ("reported-reply", "held-reply"):
        return {"kind": "reply", "item_id": t.reply.id}
    if route.target == "file":
        return {"filename": "css/app.css"}
    if route.target in ("reset-token", "unsubscribe-token", "verify-token"):
        return {"token": t.token}
    if route.target == "admin-board":
        return {"board_id": t.board.id}
    if route.target == "member":
        return {"user_id": t.member.id}
    if route.target is None:
        return {}
    args = {"idea_id": t.idea.id}
    if route.target in ("comment", "staff-comment"):
        args["comment_id"] = t.comment.id
    if route.target == "merge":
        args["merge_id"] = t.merge_id
    return args


def url(app, endpoint: str, t: Target | None = None, **query) -> str:
    """The path of `endpoint` for target `t`."""
    route = ROUTES[endpoint]
    with app.test_request_context():
        return url_for(endpoint, **url_args(route, t or Target()), **query)


NEW_PASSWORD = "a different long passphrase"

#: A valid form for every endpoint that accepts POST: (world, target, signed-in user) -> fields.
FORMS: dict[str, Callable[[World, Target, User | None], dict]] = {
    "main.set_language": lambda w, t, u: {"lang": "ru", "next": "/"},
    "auth.register": lambda w, t, u: {
        "email": f"new{next(_seq)}@example.com",
        "display_name": "New Person",
        "password": PASSWORD,
    },
    "auth.login": lambda w, t, u: {"email": "nobody@example.com", "password": "not the password"},
    "auth.logout": lambda w, t, u: {},
    "auth.account": lambda w, t, u: {
        "display_name": _unique("Renamed"),
        "email": u.email if u else "someone@example.com",
        "current_password": "",
    },
    "auth.change_password": lambda w, t, u: {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
    },
    "auth.sign_out_others": lambda w, t, u: {},
    "auth.reset_request": lambda w, t, u: {"email": "nobody@example.com"},
    "auth.reset_password": lambda w, t, u: {"password": NEW_PASSWORD},
    "auth.verify_email": lambda w, t, u: {},
    "auth.resend_verification": lambda w, t, u: {"next": "/"},
    "ideas.new": lambda w, t, u: {
        "title": _unique("A new idea"),
        "body": "Details",
        "board": w.general.id,
        "kind": "idea",
    },
    "ideas.edit": lambda w, t, u: {
        "title": _unique("Edited idea"),
        "body": "Edited",
        "board": t.idea.board_id,
        "kind": "idea",
        "version": t.idea.version,
    },
    "ideas.delete": lambda w, t, u: {},
    "ideas.restore": lambda w, t, u: {},
    "ideas.vote": lambda w, t, u: {},
    "ideas.follow": lambda w, t, u: {"intent": "follow"},
    "ideas.comment": lambda w, t, u: {"body": "A fine comment"},
    "ideas.edit_comment": lambda w, t, u: {"body": "Better words"},
    "ideas.mark_official": lambda w, t, u: {"official": "1"},
    "roadmap.change_status": lambda w, t, u: {"status": "planned", "note": "Soon"},
    "ideas.merge": lambda w, t, u: {"into": str(t.other.id) if t.other else ""},
    "ideas.undo_merge": lambda w, t, u: {},
    "admin.create_board": lambda w, t, u: {
        "slug": f"board-{next(_seq)}",
        "name": _unique("Board"),
        "description": "What it is for",
    },
    "admin.board": lambda w, t, u: {"name": _unique("Renamed board"), "description": "New words"},
    "admin.archive_board": lambda w, t, u: {"intent": "archive"},
    "admin.member_role": lambda w, t, u: {"role": "staff"},
    "admin.member_access": lambda w, t, u: {"intent": "disable"},
    "subscriptions.settings": lambda w, t, u: {
        "status": "instant",
        "comments": "daily",
        "merges": "instant",
        "my_ideas": "off",
        "communities": "instant",
        "locale": "en",
    },
    "subscriptions.unsubscribe": lambda w, t, u: {"List-Unsubscribe": "One-Click"},
    "notifications.read": lambda w, t, u: {},
    "community.join": lambda w, t, u: {"intent": "join"},
    "community.new": lambda w, t, u: {"title": _unique("A thread"), "body": "Words"},
    "community.reply": lambda w, t, u: {"body": "A reply"},
    "community.follow": lambda w, t, u: {"intent": "follow"},
    "moderation.pin": lambda w, t, u: {"intent": "pin"},
    "moderation.lock": lambda w, t, u: {"intent": "lock"},
    "moderation.hide": lambda w, t, u: {"intent": "hide", "reason": "Off topic"},
    "moderation.hide_reply": lambda w, t, u: {"intent": "hide", "reason": "Off topic"},
    "moderation.move": lambda w, t, u: {"to": t.destination.slug, "reason": "Fits there"},
    "moderation.title": lambda w, t, u: {"title": _unique("A clearer title")},
    "moderation.bans": lambda w, t, u: {
        "member": w.users["b"].email,
        "reason": "Spam",
        "days": "7",
    },
    "moderation.lift": lambda w, t, u: {"reason": "Served"},
    "moderation.settings": lambda w, t, u: {
        "name": _unique("Club"),
        "description": "About us",
        "rules": "Be kind",
        "accent": "#336699",
    },
    "moderation.moderators": lambda w, t, u: {"intent": "appoint", "member": w.users["b"].email},
    "moderation.create": lambda w, t, u: {
        "slug": f"club-{next(_seq)}",
        "name": _unique("Club"),
        "description": "What it is for",
        "owner": "",
    },
    "moderation.archive": lambda w, t, u: {"intent": "archive"},
    "reports.report_idea": lambda w, t, u: {"reason": "spam", "note": "Selling things"},
    "reports.report_comment": lambda w, t, u: {"reason": "abuse", "note": ""},
    "reports.report_thread": lambda w, t, u: {"reason": "off_topic", "note": ""},
    "reports.report_reply": lambda w, t, u: {"reason": "other", "note": "Not kind"},
    "reports.resolve": lambda w, t, u: {"resolution": "dismiss", "reason": ""},
    "reports.decide_held": lambda w, t, u: {"decision": "approve", "reason": ""},
    "community.promote": lambda w, t, u: {
        "title": _unique("Promoted thread"),
        "body": "From the club",
        "board": w.general.id,
        "kind": "idea",
    },
}

#: The same forms made to fail (wrong password...), for limits that count failures only.
REFUSED: dict[str, Callable[[World, Target, User | None], dict]] = {
    "auth.register": lambda w, t, u: {**FORMS["auth.register"](w, t, u), "display_name": ""},
    "auth.account": lambda w, t, u: {
        **FORMS["auth.account"](w, t, u),
        "email": "elsewhere@example.com",
        "current_password": "not the password",
    },
    "auth.change_password": lambda w, t, u: {
        "current_password": "not the password",
        "new_password": NEW_PASSWORD,
    },
}


def form(endpoint: str, world: World, target: Target | None, role: str = "a") -> dict:
    """A valid form for `endpoint`, posted by `role` about `target`."""
    return FORMS[endpoint](world, target or Target(), world.user(role))


def refused_form(endpoint: str, world: World, target: Target | None, role: str = "a") -> dict:
    """A form `endpoint` refuses (for limits that count failed attempts only)."""
    make = REFUSED.get(endpoint, FORMS[endpoint])
    return make(world, target or Target(), world.user(role))


# --- the policy oracle ----------------------------------------------------------------


def expected(route: Route, role: str, owner: str = "a", deleted: bool = False) -> str:
    """What should happen when `role` calls `route` on a target owned by `owner`.

    One of: ok, login (sent to sign in), forbidden (403), notfound (404).
    """
    if route.who != ANYONE and role == "anon":
        return "login"
    deleted = deleted or route.target == "deleted-idea"
    if deleted:
        # World.target(): the idea's author deleted it (for a comment, the idea is the
        # other member's), so they may still see and restore it.
        other = "b" if owner == "a" else "a"
        idea_author = other if route.target == "comment" else owner
        sees = role in STAFF_ROLES or role == idea_author
        if route.deleted == "nobody" or not sees:
            return "notfound"  # invisible objects are 404, never 403 (no existence leak)
        may = route.deleted == "author-may" or (
            route.deleted == "staff-may" and role in STAFF_ROLES
        )
        if not may:
            return "forbidden"  # they see it, but nothing but restoring happens to it
    allowed = {
        ANYONE: True,
        MEMBER: role in MEMBER_ROLES,
        STAFF: role in STAFF_ROLES,
        OWNER_OR_STAFF: role == owner or role in STAFF_ROLES,
        AUTHOR: role == owner,
        ADMIN: role == "admin",
        MODERATOR: role in STAFF_ROLES or role == "mod",
        COMMUNITY_MANAGER: role in ("admin", "staff"),  # staff: as the community's owner
        NOT_AUTHOR: role in MEMBER_ROLES and role != owner,
    }[route.who]
    return "ok" if allowed else "forbidden"


#: These tests make hundreds of accounts and sign-ins; the hash's cost proves nothing here.
CHEAP_HASH = "scrypt:1024:8:1"


# --- the database, before and after ---------------------------------------------------


_queries: dict[str, list[tuple[str, str]]] = {}


def _table_queries() -> list[tuple[str, str]]:
    """(table, SELECT of all its rows in key order) for every table in the database.

    Reflected once per database (the schema is fixed for a run). SQLite's full-text
    index tables are left out: triggers derive them from `ideas`, which is compared.
    """
    key = str(db.engine.url)
    if key not in _queries:
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        found = []
        for table in sorted(meta.tables.values(), key=lambda t: t.name):
            if "_fts" in table.name:
                continue
            order = ", ".join(c.name for c in (table.primary_key.columns or table.columns))
            found.append((table.name, f"SELECT * FROM {table.name} ORDER BY {order}"))
        _queries[key] = found
    return _queries[key]


def db_snapshot() -> dict[str, tuple[int, str]]:
    """Every table's row count and a checksum of its content (ordered by primary key)."""
    out = {}
    with db.engine.connect() as conn:
        for name, query in _table_queries():
            rows = conn.exec_driver_sql(query).all()
            digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
            out[name] = (len(rows), digest[:16])
    return out


def snapshot_diff(before: dict, after: dict) -> list[str]:
    """The tables whose rows differ, for a readable failure."""
    return [
        f"{name}: {before.get(name)} -> {after.get(name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def sign_in(client, user: User | None, **request) -> None:
    """Sign `client` in as `user`, or leave it a visitor (`request`: see login_as)."""
    from .factories import login_as

    if user is None:
        with client.session_transaction(**request) as sess:
            sess.clear()
    else:
        login_as(client, user, **request)


def csrf_token(client) -> str:
    """A valid CSRF token for `client`'s session (from the reset page's form, which is
    shown signed in or not)."""
    import re

    html = client.get("/reset").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def all_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.id)))
