"""The authorisation matrix and mass assignment (security.md #28-#34, #32).

Every route of the inventory × roles {visitor, member a, member b, moderator, staff,
admin} × an object owned by a or by b × that object live or deleted × plain and htmx
requests. The expected outcome comes from the hand-written policy in tests/routes.py
(`expected`), never from permissions.py. Every refusal must also leave every table
exactly as it was.

What the app has, and so what is covered: ownership of ideas and comments (#28), staff-only
status changes and official responses (#29), moderators with no extra power (#30: no
communities yet), the admin area for admins only (#31: boards, roles and disabling, policy
ADMIN; self-demotion and the last admin in tests/test_admin.py), and deleted ideas
answering 404 to everyone but staff (#33). A disabled account (#34) is signed out and
refused at sign-in (tests/test_admin.py).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, StatusChange, User, Vote
from ideaboard.perf import observe
from ideaboard.services import follows

from .conftest import fresh_app
from .factories import PASSWORD, reload
from .routes import (
    CHEAP_HASH,
    ROLES,
    ROUTES,
    Target,
    World,
    db_snapshot,
    expected,
    form,
    sign_in,
    snapshot_diff,
    url,
)


@pytest.fixture
def app(make_app):
    """The usual fresh app, with cheap password hashing (see routes.CHEAP_HASH)."""
    with fresh_app(make_app, PASSWORD_HASH_METHOD=CHEAP_HASH) as app:
        yield app


MATRIX = sorted(e for e in ROUTES if e != "static")


def _check(resp, outcome: str, route, method: str, htmx: bool) -> str | None:
    """Why `resp` does not show `outcome`, or None if it does."""
    code = resp.status_code
    if outcome == "ok":
        want = route.ok_get if method == "GET" else {route.ok[htmx]}
        return None if code in want else f"status {code}, want {sorted(want)}"
    if outcome == "login":
        if htmx:
            ok = code == 401 and resp.headers.get("HX-Redirect", "").startswith("/login?next=")
        else:
            ok = code == 302 and resp.headers.get("Location", "").startswith("/login?next=")
        return None if ok else f"status {code}, want to be sent to sign in"
    want = {"forbidden": 403, "notfound": 404}[outcome]
    return None if code == want else f"status {code}, want {want}"


class Browser:
    """One role's browser in the matrix.

    "session": signed in by writing the session (routes.sign_in), CSRF off. Flask-Login's
    session-protection id is left out of such a session, so every request goes through
    Flask: this tests the Flask routes alone.

    "sign-in form": signed in through the real sign-in form with CSRF on, as a person is;
    every post carries the session's token. The fast paths take the requests they take
    (a member's htmx vote, a visitor's cached page), so each is held to the same policy
    as its Flask route. A visitor reads without cookies (as a first visit does) and posts
    with the token of a session of its own.
    """

    def __init__(self, app, user, how: str) -> None:
        self.app, self.how, self.token = app, how, None
        self.client = app.test_client()
        self.reader = self.client
        if how == "session":
            sign_in(self.client, user)
            return
        if user is None:
            self.reader = app.test_client()
            self.token = _page_token(self.client.get("/login"))
            return
        token = _page_token(self.client.get("/login"))
        signed = self.client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303, signed.status_code
        self.token = _page_token(self.client.get("/ideas/new"))

    def get(self, path: str, headers: dict):
        return self.reader.get(path, headers=headers)

    def post(self, path: str, data: dict, headers: dict):
        if self.token is not None:
            data = {**data, "csrf_token": self.token}
            headers = {**headers, "X-CSRFToken": self.token} if headers else headers
        return self.client.post(path, data=data, headers=headers)


def _page_token(resp) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', resp.get_data(as_text=True)).group(1)


@pytest.mark.parametrize("how", ["session", "sign-in form"])
@pytest.mark.parametrize("endpoint", MATRIX)
def test_authorisation_matrix(make_app, endpoint, how):
    """Each role gets exactly what the policy says; every refusal leaves the DB unchanged;
    through Flask alone, and signed in for real with the fast paths on."""
    settings = {"PASSWORD_HASH_METHOD": CHEAP_HASH, "WTF_CSRF_ENABLED": how != "session"}
    with fresh_app(make_app, **settings) as app:
        vias = Counter()
        with observe.request_answered.connected_to(
            lambda _app, answer: vias.update([answer.via]), app
        ):
            _matrix(app, endpoint, how)
    if how != "session" and endpoint == "ideas.vote":
        assert vias[observe.VIA_VOTE_FAST_PATH] >= 4  # members' htmx votes on live ideas
    if how != "session" and endpoint in ("ideas.show", "ideas.index", "main.home"):
        assert vias[observe.VIA_VISITOR_CACHE] >= 1  # a visitor's second look


def _matrix(app, endpoint: str, how: str) -> None:
    route = ROUTES[endpoint]
    world = World.build()
    has_owner = route.target in (
        "idea",
        "comment",
        "staff-comment",
        "deleted-idea",
        "reset-token",
        "verify-token",
        "merge-pair",
    )
    owners = ("a", "b") if has_owner else ("a",)
    states = (
        (False, True)
        if route.target in ("idea", "comment", "staff-comment", "merge-pair")
        else (False,)
    )
    browsers = {}

    def browser_for(role):
        if role not in browsers:
            browsers[role] = Browser(app, world.user(role), how)
        return browsers[role]

    failures = []
    cases = 0
    for method in route.methods:
        # htmx matters where it changes the answer: actions (fragments, 401 + HX-Redirect).
        variants = (False, True) if method != "GET" and not route.api else (False,)
        for owner in owners:
            for deleted in states:
                target, before = None, None
                for role in ROLES:
                    for htmx in variants:
                        if target is None:
                            for everyone in ROLES:  # signed in before the snapshot
                                browser_for(everyone)
                            target = world.target(route, owner=owner, deleted=deleted)
                            before = db_snapshot()
                        outcome = expected(route, role, owner=owner, deleted=deleted)
                        browser = browser_for(role)
                        headers = {"HX-Request": "true"} if htmx else {}
                        path = url(app, endpoint, target)
                        if method == "GET":
                            # A visitor looks twice: the second answer may come from the
                            # visitor page cache, and must say the same.
                            looks = 2 if role == "anon" and how != "session" else 1
                            answers = [browser.get(path, headers) for _ in range(looks)]
                        else:
                            data = form(endpoint, world, target, role)
                            answers = [browser.post(path, data, headers)]
                        cases += 1
                        what = f"{method} {endpoint} as {role} on {owner}'s"
                        what += f"{' deleted' if deleted else ''} object{' (htmx)' if htmx else ''}"
                        for resp in answers:
                            problem = _check(resp, outcome, route, method, htmx)
                            if problem:
                                failures.append(f"{what}: {problem}")
                        after = db_snapshot()
                        changed = snapshot_diff(before, after)
                        if changed and (outcome != "ok" or method == "GET"):
                            failures.append(f"{what}: {outcome}, yet the DB changed: {changed}")
                        if outcome == "ok" and method != "GET":
                            # It may have changed the object, the session or a user's
                            # password and session token: a fresh object, and fresh
                            # browsers for the role that acted and for anyone signed out.
                            target = None
                            tokens = {r: u.session_token for r, u in world.users.items()}
                            world.refresh()
                            for r, u in world.users.items():
                                if u.session_token != tokens[r]:
                                    browsers.pop(r, None)
                            browsers.pop(role, None)
                        else:
                            before = after
    assert not failures, "\n".join(failures)
    assert cases >= len(ROLES)


# --- #32 mass assignment ------------------------------------------------------------

#: Fields no form declares, that a crafted request might add.
PRIVILEGED = {
    "role": "admin",
    "is_staff": "1",
    "is_admin": "1",
    "vote_count": "999",
    "comment_count": "999",
    "trending_score": "1000000",
    "deleted_at": "2020-01-01 00:00:00",
    "deleted_by_id": "1",
    "created_at": "2020-01-01 00:00:00",
    "session_token": "attacker-token",
    "password_hash": "plain",
    "email_key": "admin@example.com",
    "is_official": "1",
    "edited_at": "2020-01-01 00:00:00",
    "id": "424242",
}


def _extras(world: World) -> dict:
    """PRIVILEGED plus extras naming other people and places."""
    b = world.users["b"]
    return {
        **PRIVILEGED,
        "author_id": str(b.id),
        "user_id": str(b.id),
        "by_id": str(b.id),
        "board_id": str(world.other.id),
        "idea_id": "1",
        "status": "shipped",
    }


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _newest(model):
    return db.session.scalar(select(model).order_by(model.id.desc()).limit(1))


ROLE_OF = {"a": "member", "b": "member", "mod": "moderator", "staff": "staff", "admin": "admin"}


def _roles_unchanged(world: World) -> None:
    """Everyone still has the role they were made with, as the database has it now."""
    roles = dict(db.session.execute(select(User.id, User.role)).all())
    for key, user in world.users.items():
        assert roles[user.id] == ROLE_OF[key], key
    admins = {uid for uid, role in roles.items() if role == "admin"}
    assert admins == {world.users["admin"].id}


def test_posting_an_idea_ignores_privileged_fields(app, client):
    """A new idea is the poster's, at heard, with only the poster's own vote, whatever extra
    fields say."""
    world = World.build()
    sign_in(client, world.users["a"])
    data = form("ideas.new", world, None)
    resp = client.post("/ideas/new", data={**_extras(world), **data})
    assert resp.status_code == 303
    idea = _newest(Idea)
    assert idea.title == data["title"] and idea.author_id == world.users["a"].id
    assert (idea.status, idea.vote_count, idea.comment_count, idea.version) == ("heard", 1, 0, 1)
    assert idea.board_id == world.general.id and idea.deleted_at is None
    assert idea.created_at.year > 2020 and idea.id != 424242
    new_votes = db.session.execute(
        select(Vote.idea_id, Vote.user_id).where(Vote.idea_id == idea.id)
    )
    assert new_votes.all() == [(idea.id, world.users["a"].id)]
    _roles_unchanged(world)


def test_editing_an_idea_changes_only_the_declared_fields(app, client):
    """An author's edit with extras keeps the author, status, counts and visibility."""
    world = World.build()
    target = world.target(ROUTES["ideas.edit"], owner="a")
    before = reload(target.idea)
    kept = (before.author_id, before.status, before.vote_count, before.created_at)
    version = before.version
    sign_in(client, world.users["a"])
    data = form("ideas.edit", world, target)
    resp = client.post(f"/ideas/{target.idea.id}/edit", data={**_extras(world), **data})
    assert resp.status_code == 303
    idea = reload(target.idea)
    assert idea.title == data["title"] and idea.version == version + 1
    assert (idea.author_id, idea.status, idea.vote_count, idea.created_at) == kept
    assert idea.deleted_at is None and idea.board_id == world.general.id
    _roles_unchanged(world)


def test_a_member_cannot_set_status_through_the_edit_form(app, client):
    """status= added to an idea edit is ignored: only staff move ideas (#29)."""
    world = World.build()
    target = world.target(ROUTES["ideas.edit"], owner="a")
    sign_in(client, world.users["a"])
    data = {**form("ideas.edit", world, target), "status": "shipped", "note": "done"}
    assert client.post(f"/ideas/{target.idea.id}/edit", data=data).status_code == 303
    assert reload(target.idea).status == "heard"
    assert _count(StatusChange) == 1  # only the idea's first entry


def test_commenting_ignores_privileged_fields(app, client):
    """A comment is the commenter's, on the URL's idea, and not official."""
    world = World.build()
    target = world.target(ROUTES["ideas.comment"], owner="b")
    other = world.target(ROUTES["ideas.comment"], owner="a")
    before = reload(target.idea)
    kept = (before.status, before.vote_count, before.author_id)
    sign_in(client, world.users["a"])
    extras = {**_extras(world), "idea_id": str(other.idea.id)}
    extras.pop("is_official")
    resp = client.post(f"/ideas/{target.idea.id}/comments", data={**extras, "body": "Mine"})
    assert resp.status_code == 303
    comment = _newest(Comment)
    assert (comment.author_id, comment.idea_id, comment.is_official) == (
        world.users["a"].id,
        target.idea.id,
        False,
    )
    idea = reload(target.idea)
    assert (idea.status, idea.vote_count, idea.author_id) == kept
    assert reload(other.idea).comment_count == 0


def test_a_member_cannot_post_an_official_response(app, client):
    """official=y from a member is refused, and nothing is posted (#29)."""
    world = World.build()
    target = world.target(ROUTES["ideas.comment"], owner="b")
    sign_in(client, world.users["a"])
    before = db_snapshot()
    resp = client.post(
        f"/ideas/{target.idea.id}/comments", data={"body": "Officially", "official": "y"}
    )
    assert resp.status_code == 403
    assert db_snapshot() == before


def test_editing_a_comment_ignores_privileged_fields(app, client):
    """A comment edit changes the text only: not its author, idea or official flag."""
    world = World.build()
    target = world.target(ROUTES["ideas.edit_comment"], owner="a")
    sign_in(client, world.users["a"])
    path = url(app, "ideas.edit_comment", target)
    assert client.post(path, data={**_extras(world), "body": "New text"}).status_code == 303
    comment = reload(target.comment)
    assert comment.body == "New text" and comment.author_id == world.users["a"].id
    assert comment.idea_id == target.idea.id and comment.is_official is False


def test_status_change_records_the_staff_member_not_a_posted_one(app, client):
    """A status change is by the signed-in staff member; the idea keeps author and board."""
    world = World.build()
    target = world.target(ROUTES["roadmap.change_status"], owner="a")
    sign_in(client, world.users["staff"])
    extras = {k: v for k, v in _extras(world).items() if k != "status"}
    resp = client.post(
        f"/ideas/{target.idea.id}/status", data={**extras, "status": "planned", "note": "n"}
    )
    assert resp.status_code == 303
    change = _newest(StatusChange)
    assert (change.by_id, change.to_status, change.idea_id) == (
        world.users["staff"].id,
        "planned",
        target.idea.id,
    )
    idea = reload(target.idea)
    assert (idea.author_id, idea.board_id, idea.vote_count) == (
        world.users["a"].id,
        world.general.id,
        1,  # its author's own vote, untouched
    )
    _roles_unchanged(world)


def test_a_vote_is_always_the_voters_own(app, client):
    """user_id= in a vote post cannot cast a vote for someone else."""
    world = World.build()
    target = world.target(ROUTES["ideas.vote"], owner="b")
    sign_in(client, world.users["a"])
    resp = client.post(f"/ideas/{target.idea.id}/vote", data=_extras(world))
    assert resp.status_code == 303
    voters = set(db.session.scalars(select(Vote.user_id).where(Vote.idea_id == target.idea.id)))
    assert voters == {world.users["a"].id, world.users["b"].id}  # a's, and b's as its author
    assert reload(target.idea).vote_count == 2


def test_a_follow_is_always_the_followers_own(app, client):
    """user_id= or follower_count= in a follow post follow for nobody else, count nothing."""
    world = World.build()
    target = world.target(ROUTES["ideas.follow"], owner="b")
    sign_in(client, world.users["a"])
    before = reload(target.idea).follower_count
    data = {**_extras(world), "follower_count": "999", "active": "0", "intent": "follow"}
    assert client.post(f"/ideas/{target.idea.id}/follow", data=data).status_code == 303
    followers = set(db.session.scalars(follows.followers_query(target.idea.id)))
    assert world.users["a"].id in followers and world.users["b"].id in followers
    assert len(followers) == 2 and reload(target.idea).follower_count == before + 1 == 2


def test_community_posts_ignore_privileged_fields(app, client):
    """A thread or reply posted with author_id, pinned, held_at, community_id, counts...
    is the poster's own, in the URL's community, unpinned, visible, counted once; join and
    follow act for the poster only."""
    from ideaboard.models import CommunityMember, Reply, Thread, ThreadFollow

    world = World.build()
    club, elsewhere = world.community, world.elsewhere
    a, b = world.users["a"], world.users["b"]
    sign_in(client, a)
    extras = {
        **_extras(world),
        "community_id": str(elsewhere.id),
        "pinned": "1",
        "locked_at": "2020-01-01 00:00:00",
        "held_at": "2020-01-01 00:00:00",
        "reply_count": "999",
        "follower_count": "999",
        "thread_id": "1",
        "quote_of_id": "1",
        "approved_at": "2020-01-01 00:00:00",
        "active": "0",
    }
    resp = client.post(f"/c/{club.slug}/new", data={**extras, "title": "Mine", "body": "x"})
    assert resp.status_code == 303
    thread = db.session.scalar(select(Thread).where(Thread.title == "Mine"))
    assert (thread.author_id, thread.community_id, thread.pinned) == (a.id, club.id, 0)
    assert thread.held_at is None and thread.locked_at is None and thread.deleted_at is None
    assert thread.reply_count == 0 and thread.follower_count == 1
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={**extras, "body": "Hi"})
    assert resp.status_code == 303
    reply = db.session.scalar(select(Reply).where(Reply.thread_id == thread.id))
    assert (reply.author_id, reply.community_id, reply.quote_of_id) == (a.id, club.id, None)
    assert reply.held_at is None and reply.deleted_at is None
    assert reload(thread).reply_count == 1
    assert client.post(f"/c/{club.slug}/join", data={**extras, "intent": "join"}).status_code == 303
    members = db.session.execute(
        select(CommunityMember.user_id, CommunityMember.community_id)
    ).all()
    assert members == [(a.id, club.id)]
    assert reload(club).member_count == 1
    data = {**extras, "intent": "follow"}
    assert client.post(f"/c/{club.slug}/t/{thread.id}/follow", data=data).status_code == 303
    follows_ = db.session.execute(select(ThreadFollow.user_id, ThreadFollow.active)).all()
    assert follows_ == [(a.id, True)] and b.id not in {u for u, _ in follows_}


def test_registering_ignores_role_and_other_privileged_fields(app, client):
    """A new account is a plain member whatever the form adds."""
    world = World.build()
    data = form("auth.register", world, None, "anon")
    resp = client.post("/register", data={**_extras(world), **data})
    assert resp.status_code == 303
    user = db.session.scalar(select(User).where(User.email == data["email"]))
    assert user.role == "member" and user.id != 424242
    assert user.session_token != "attacker-token" and user.password_hash.startswith("scrypt:")


def test_signing_in_ignores_role(app, client):
    """role=admin on the sign-in form changes nobody's role."""
    from .factories import PASSWORD

    world = World.build()
    a = world.users["a"]
    resp = client.post("/login", data={**_extras(world), "email": a.email, "password": PASSWORD})
    assert resp.status_code == 303
    _roles_unchanged(world)


def test_account_settings_ignore_role_and_other_privileged_fields(app, client):
    """Saving one's account changes the name only: not role, token, password or email key."""
    world = World.build()
    a = world.users["a"]
    kept = (a.role, a.session_token, a.password_hash, a.email_key)
    sign_in(client, a)
    data = form("auth.account", world, None, "a")
    assert client.post("/account", data={**_extras(world), **data}).status_code == 303
    fresh = reload(a)
    assert fresh.display_name == data["display_name"]
    assert (fresh.role, fresh.session_token, fresh.password_hash, fresh.email_key) == kept
    _roles_unchanged(world)


def test_password_change_and_reset_ignore_role(app, client):
    """A password change or a reset with role=admin and friends changes only the password."""
    world = World.build()
    a, b = world.users["a"], world.users["b"]
    before = {u.id: (u.role, u.email, u.password_hash) for u in (a, b)}
    sign_in(client, a)
    data = {**_extras(world), **form("auth.change_password", world, None, "a")}
    assert client.post("/account/password", data=data).status_code == 303
    target = world.target(ROUTES["auth.reset_password"], owner="b")
    data = {**_extras(world), **form("auth.reset_password", world, target, "anon")}
    path = url(app, "auth.reset_password", target)
    assert app.test_client().post(path, data=data).status_code == 303
    for user in (a, b):
        role, email, password_hash = before[user.id]
        fresh = reload(user)
        assert (fresh.role, fresh.email) == (role, email)
        assert fresh.password_hash != password_hash and fresh.session_token != "attacker-token"
    assert reload(world.users["mod"]).role == "moderator"


def test_admin_board_forms_change_only_their_declared_fields(app, client):
    """Creating, editing and archiving a board from the admin area ignore extra fields:
    no slug change on edit, no archiving by a posted archived_at, no chosen id."""
    from ideaboard.models import Board

    world = World.build()
    sign_in(client, world.users["admin"])
    extras = {**_extras(world), "archived_at": "2020-01-01 00:00:00", "board_id": "1"}
    data = form("admin.create_board", world, None, "admin")
    assert client.post("/admin/boards", data={**extras, **data}).status_code == 303
    board = _newest(Board)
    assert (board.slug, board.name, board.archived_at) == (data["slug"], data["name"], None)
    assert board.id != 424242 and board.created_at.year > 2020
    edit = {**extras, "slug": "hijacked", **form("admin.board", world, None, "admin")}
    assert client.post(f"/admin/boards/{board.id}", data=edit).status_code == 303
    board = reload(board)
    assert (board.slug, board.name, board.archived_at) == (data["slug"], edit["name"], None)
    archive = {**extras, "name": "Other name", "intent": "archive"}
    assert client.post(f"/admin/boards/{board.id}/archive", data=archive).status_code == 303
    board = reload(board)
    assert board.name == edit["name"] and board.archived_at is not None
    assert reload(world.other).archived_at is None and reload(world.general).archived_at is None
    _roles_unchanged(world)


def test_admin_member_forms_change_only_the_target_and_field(app, client):
    """A role or access change names its member in the URL only: extra user ids, tokens,
    emails or hashes in the form change nobody else and nothing else."""
    world = World.build()
    target = world.target(ROUTES["admin.member_role"])
    member = reload(target.member)
    kept = (member.email_key, member.password_hash, member.display_name)
    sign_in(client, world.users["admin"])
    extras = {**_extras(world), "disabled_at": "2020-01-01 00:00:00"}
    path = f"/admin/members/{member.id}"
    assert client.post(path + "/role", data={**extras, "role": "staff"}).status_code == 303
    assert client.post(path + "/access", data={**extras, "intent": "disable"}).status_code == 303
    member = reload(member)
    assert member.role == "staff" and member.disabled_at is not None
    assert (member.email_key, member.password_hash, member.display_name) == kept
    assert member.session_token != "attacker-token"
    _roles_unchanged(world)
    assert all(reload(u).disabled_at is None for u in world.users.values())


def test_marking_notifications_read_touches_only_the_members_own(app, client):
    """i13 notify: "mark read" with another member's ids, a chosen read_at or event in the
    form marks only the poster's own notifications; another member's `id` answers 404."""
    from ideaboard.models import Event, EventKind, Notification
    from ideaboard.services import events, notifications

    world = World.build()
    a, b = world.users["a"], world.users["b"]
    from .factories import make_idea

    idea = make_idea(a)
    events.record(EventKind.STATUS_CHANGED, idea, world.users["staff"], to="planned")
    db.session.commit()
    event_id = db.session.scalar(select(func.max(Event.id)))
    for user in (a, b):
        db.session.add(Notification(user_id=user.id, event_id=event_id))
    db.session.commit()
    theirs = db.session.scalar(select(Notification.id).where(Notification.user_id == b.id))
    sign_in(client, a)
    extras = {**_extras(world), "read_at": "2020-01-01 00:00:00", "event_id": "1"}
    assert client.post("/notifications/read", data={**extras, "id": theirs}).status_code == 404
    data = {k: v for k, v in extras.items() if k != "id"}
    assert client.post("/notifications/read", data=data).status_code == 303
    rows = {n.user_id: n for n in db.session.scalars(select(Notification))}
    db.session.expire_all()
    assert rows[a.id].read_at is not None and rows[a.id].read_at.year > 2020
    assert rows[b.id].read_at is None and notifications.unread_count(b) == 1
    assert {n.event_id for n in rows.values()} == {event_id}
    _roles_unchanged(world)


def test_mail_choices_and_unsubscribing_touch_only_the_members_own(app, client):
    """i13 mail: the settings form with another member's `user_id`, a `kind` or `delivery`
    field and privileged extras sets only the poster's own choices; an unsubscribe POST
    with extras naming another member or scope turns off only the token's own."""
    from ideaboard.models import NotificationPreference
    from ideaboard.services import notification_mail as nm

    world = World.build()
    a, b = world.users["a"], world.users["b"]
    sign_in(client, a)
    extras = {**_extras(world), "kind": "comment", "delivery": "off"}
    form = {g.name: "daily" for g in nm.GROUPS}
    assert (
        client.post("/account/notifications", data={**extras, **form, "locale": "ru"}).status_code
        == 303
    )
    db.session.expire_all()
    assert set(nm.preferences_of(a).values()) == {"daily"}
    assert nm.preferences_of(b) == {g.name: g.default for g in nm.GROUPS}
    client.post("/logout", data=_extras(world))
    token = nm.unsubscribe_token(a.id, "status")
    data = {**extras, "scope": "comments", "user_id": str(b.id)}
    assert client.post(f"/unsubscribe/{token}", data=data).status_code == 200
    db.session.expire_all()
    assert nm.preferences_of(a)["status"] == "off" and nm.preferences_of(a)["comments"] == "daily"
    owners = set(db.session.scalars(select(NotificationPreference.user_id)))
    assert owners == {a.id}
    _roles_unchanged(world)


def test_merging_and_undoing_record_the_staff_member_and_only_the_named_ideas(app, client):
    """i13 merge: extras naming another actor, a status, counts or a third idea change
    nothing but the merge of this idea into `into`, recorded as the signed-in staff
    member's; undo likewise touches only its own merge."""
    from ideaboard.models import Idea, Merge

    from .factories import make_idea, vote_for

    world = World.build()
    a, b, staff = world.users["a"], world.users["b"], world.users["staff"]
    into, merged, bystander = make_idea(a), make_idea(b), make_idea(b)
    vote_for(into, b)
    db.session.commit()
    before = {i.id: (i.status, i.vote_count) for i in (into, bystander)}
    sign_in(client, staff)
    extras = {
        **_extras(world),
        "merged_id": str(bystander.id),
        "merged_into_id": str(bystander.id),
        "vote_count": "999",
        "follower_count": "999",
        "previous_status": "shipped",
    }
    resp = client.post(f"/ideas/{merged.id}/merge", data={**extras, "into": str(into.id)})
    assert resp.status_code == 303
    db.session.expire_all()
    merge = db.session.scalar(select(Merge))
    assert (merge.merged_id, merge.into_id, merge.by_id) == (merged.id, into.id, staff.id)
    assert merge.previous_status == "heard"
    assert db.session.get(Idea, merged.id).merged_into_id == into.id
    assert db.session.get(Idea, bystander.id).merged_into_id is None
    assert db.session.get(Idea, into.id).vote_count == 2  # its author's and b's, once
    resp = client.post(f"/ideas/{into.id}/merges/{merge.id}/undo", data=extras)
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Merge, merge.id).undone_by_id == staff.id
    assert db.session.get(Idea, merged.id).status == "heard"
    after = {
        i: (db.session.get(Idea, i).status, db.session.get(Idea, i).vote_count) for i in before
    }
    assert after == before
    _roles_unchanged(world)


def test_moderation_forms_change_only_their_target_and_field(app, client):
    """i14 moderation: extras naming another author, community, thread, counts or a
    deletion change nothing but the declared field, recorded as the signed-in moderator's;
    the ban is of the named member, the appointment of the named member."""
    from ideaboard.models import AuditEntry, Community, CommunityBan, CommunityModerator, Thread

    from .factories import make_community, make_reply, make_thread

    world = World.build()
    a, b, mod = world.users["a"], world.users["b"], world.users["mod"]
    club, elsewhere = world.community, world.elsewhere
    thread = make_thread(club, a, title="Original title")
    reply = make_reply(thread, a)
    bystander = make_thread(elsewhere, b, title="Bystander")
    annex = make_community()
    db.session.add(CommunityModerator(community_id=annex.id, user_id=mod.id))
    db.session.commit()
    extras = {
        **_extras(world),
        "community_id": str(elsewhere.id),
        "thread_id": str(bystander.id),
        "reply_count": "999",
        "thread_count": "999",
        "member_count": "999",
        "pinned": "1",
        "locked_at": "2020-01-01 00:00:00",
        "owner_id": str(b.id),
        "slug": "hijacked",
        "banned_by_id": str(b.id),
        "expires_at": "2020-01-01 00:00:00",
        "actor_id": str(b.id),
    }
    sign_in(client, mod)
    base = f"/c/{club.slug}/t/{thread.id}"
    for path, data in (
        (f"{base}/pin", {"intent": "pin"}),
        (f"{base}/lock", {"intent": "lock"}),
        (f"{base}/title", {"title": "Clear title"}),
        (f"{base}/r/{reply.id}/hide", {"intent": "hide", "reason": "Spam"}),
        (f"{base}/hide", {"intent": "hide", "reason": "Spam"}),
        (f"/c/{club.slug}/bans", {"member": a.email, "reason": "Spam", "days": "7"}),
    ):
        assert client.post(path, data={**extras, **data}).status_code == 303, path
    ban = db.session.scalar(select(CommunityBan).order_by(CommunityBan.id.desc()))
    assert (ban.user_id, ban.community_id, ban.banned_by_id) == (a.id, club.id, mod.id)
    assert ban.expires_at > ban.created_at
    assert client.post(f"/c/{club.slug}/bans/{ban.id}/lift", data=extras).status_code == 303
    resp = client.post(f"{base}/move", data={**extras, "to": annex.slug})
    assert resp.status_code == 303
    db.session.expire_all()
    moved = db.session.get(Thread, thread.id)
    assert (moved.title, moved.author_id, moved.community_id) == ("Clear title", a.id, annex.id)
    assert moved.is_pinned and moved.is_locked and moved.deleted_by_id == mod.id
    other = db.session.get(Thread, bystander.id)
    assert (other.title, other.is_pinned, other.deleted_at) == ("Bystander", False, None)
    assert db.session.get(Community, elsewhere.id).slug != "hijacked"
    assert {e.actor_id for e in db.session.scalars(select(AuditEntry))} <= {None, mod.id}
    # The owner's settings and moderators, the admin's create and archive.
    staff, admin = world.users["staff"], world.users["admin"]
    sign_in(client, staff)  # the world's community's owner
    data = {**extras, "name": "Renamed", "description": "d", "rules": "r", "accent": "#123456"}
    assert client.post(f"/c/{club.slug}/settings", data=data).status_code == 303
    data = {**extras, "intent": "appoint", "member": b.email}
    assert client.post(f"/c/{club.slug}/moderators", data=data).status_code == 303
    db.session.expire_all()
    club_now = db.session.get(Community, club.id)
    assert (club_now.name, club_now.slug, club_now.owner_id) == ("Renamed", club.slug, staff.id)
    assert club_now.member_count == 0
    mods = set(
        db.session.scalars(
            select(CommunityModerator.user_id).where(CommunityModerator.community_id == club.id)
        )
    )
    assert mods == {mod.id, b.id}
    sign_in(client, admin)
    data = {**extras, "slug": "fresh-club", "name": "Fresh", "owner": ""}
    assert client.post("/admin/communities", data=data).status_code == 303
    fresh = db.session.scalar(select(Community).where(Community.slug == "fresh-club"))
    assert fresh.owner_id is None and fresh.member_count == 0
    data = {**extras, "intent": "archive"}
    assert client.post("/admin/communities/fresh-club/archive", data=data).status_code == 303
    db.session.expire_all()
    assert db.session.get(Community, fresh.id).is_archived
    assert not db.session.get(Community, elsewhere.id).is_archived


def test_reporting_records_the_reporter_and_only_the_named_item(app, client):
    """i14 reports: extras naming another reporter, another item, a resolution or a
    community change nothing: the report is the signed-in member's, of the URL's item,
    open."""
    from ideaboard.models import Report

    from .factories import make_comment, make_idea, make_reply, make_thread

    world = World.build()
    a, b = world.users["a"], world.users["b"]
    idea, other = make_idea(b), make_idea(b)
    comment = make_comment(idea, b)
    thread = make_thread(world.community, b)
    reply = make_reply(thread, b)
    extras = {
        **_extras(world),
        "reporter_id": str(b.id),
        "target_id": str(other.id),
        "target_kind": "idea",
        "community_id": str(world.elsewhere.id),
        "resolved_at": "2020-01-01 00:00:00",
        "resolved_by_id": str(b.id),
        "resolution": "dismiss",
    }
    sign_in(client, a)
    paths = {
        ("idea", idea.id): f"/ideas/{idea.id}/report",
        ("comment", comment.id): f"/ideas/{idea.id}/comments/{comment.id}/report",
        ("thread", thread.id): f"/c/{world.community.slug}/t/{thread.id}/report",
        ("reply", reply.id): f"/c/{world.community.slug}/t/{thread.id}/r/{reply.id}/report",
    }
    for path in paths.values():
        resp = client.post(path, data={**extras, "reason": "spam", "note": ""})
        assert resp.status_code == 303, path
    db.session.expire_all()
    rows = list(db.session.scalars(select(Report).order_by(Report.id)))
    assert [(r.target_kind, r.target_id) for r in rows] == list(paths)
    for r in rows:
        assert (r.reporter_id, r.resolved_at, r.resolution) == (a.id, None, None)
        want = world.community.id if r.target_kind in ("thread", "reply") else None
        assert r.community_id == want
    _roles_unchanged(world)


def test_queue_actions_record_the_moderator_and_touch_only_the_named_item(app, client):
    """i14 queue: resolving and deciding a held post record the signed-in moderator, and
    extras naming other items, authors or communities change nothing else."""
    from ideaboard.models import AuditEntry, CommunityMember, Reply, Report
    from ideaboard.services import reports

    from .factories import make_reply, make_thread, make_user

    world = World.build()
    mod, b = world.users["mod"], world.users["b"]
    thread = make_thread(world.community, b)
    reported, bystander = make_reply(thread, b), make_reply(thread, b)
    reports.file_report(world.users["a"], reports.load_item("reply", reported.id), "spam", "")
    reports.file_report(world.users["a"], reports.load_item("reply", bystander.id), "spam", "")
    newcomer = make_user()
    world.community.require_approval = True
    db.session.commit()
    held = make_reply(thread, newcomer)
    world.community.require_approval = False
    db.session.commit()
    assert held.held_at is not None
    extras = {
        **_extras(world),
        "item_id": str(bystander.id),
        "kind": "idea",
        "resolved_by_id": str(b.id),
        "actor_id": str(b.id),
        "community_id": str(world.elsewhere.id),
        "user_id": str(b.id),
    }
    sign_in(client, mod)
    resp = client.post(f"/mod/reports/reply/{reported.id}", data={**extras, "resolution": "hide"})
    assert resp.status_code == 303
    resp = client.post(f"/mod/held/reply/{held.id}", data={**extras, "decision": "approve"})
    assert resp.status_code == 303
    db.session.expire_all()
    closed = db.session.scalars(select(Report).where(Report.target_id == reported.id)).one()
    assert (closed.resolved_by_id, closed.resolution) == (mod.id, "hide")
    still = db.session.scalars(select(Report).where(Report.target_id == bystander.id)).one()
    assert still.resolved_at is None
    assert db.session.get(Reply, bystander.id).deleted_at is None
    assert db.session.get(Reply, held.id).held_at is None
    members = {m.user_id for m in db.session.scalars(select(CommunityMember))}
    assert newcomer.id in members and b.id not in members
    acted = select(AuditEntry).where(AuditEntry.action.in_(("report.resolve", "post.approve")))
    assert [(e.action, e.actor_id) for e in db.session.scalars(acted.order_by(AuditEntry.id))] == [
        ("report.resolve", mod.id),
        ("post.approve", mod.id),
    ]


def test_promoting_a_thread_ignores_privileged_fields(app, client):
    """i14 promotion: the idea is the thread's author's, at heard, with only their vote, on
    the chosen board; extras naming another author, a status, counts or an idea change
    nothing, and the audit entry names the signed-in moderator."""
    from ideaboard.models import AuditEntry, Thread

    world = World.build()
    a, mod = world.users["a"], world.users["mod"]
    target = world.target(ROUTES["community.promote"])
    sign_in(client, mod)
    data = form("community.promote", world, target, "mod")
    extras = {**_extras(world), "author_id": str(world.users["b"].id), "actor_id": "1"}
    url = f"/c/{world.community.slug}/t/{target.thread.id}/promote"
    assert client.post(url, data={**extras, **data}).status_code == 303
    db.session.expire_all()
    idea = _newest(Idea)
    assert (idea.title, idea.author_id, idea.board_id) == (data["title"], a.id, world.general.id)
    assert (idea.status, idea.vote_count, idea.comment_count) == ("heard", 1, 0)
    assert idea.deleted_at is None and idea.id != 424242 and idea.created_at.year > 2020
    assert db.session.get(Thread, target.thread.id).idea_id == idea.id
    entry = _newest(AuditEntry)
    assert (entry.actor_id, entry.action, entry.target_id) == (
        mod.id,
        "thread.promote",
        target.thread.id,
    )
    _roles_unchanged(world)


def test_every_form_route_has_a_mass_assignment_test():
    """A new route that takes a form must get a test in this file."""
    covered = {
        "ideas.new",
        "ideas.edit",
        "ideas.comment",
        "ideas.edit_comment",
        "roadmap.change_status",
        "ideas.vote",
        "ideas.follow",
        "auth.register",
        "auth.login",
        "auth.account",
        "auth.change_password",
        "auth.reset_password",
        # Routes whose form names nothing stored on a model:
        "auth.reset_request",
        "auth.sign_out_others",
        "main.set_language",
        "auth.logout",
        "ideas.delete",
        "ideas.restore",
        "ideas.mark_official",
        "admin.create_board",
        "admin.board",
        "admin.archive_board",
        "admin.member_role",
        "admin.member_access",
        "auth.verify_email",  # the token in the URL is all it takes
        "auth.resend_verification",
        "notifications.read",
        "subscriptions.settings",
        "subscriptions.unsubscribe",
        "ideas.merge",
        "ideas.undo_merge",
        "community.new",  # test_community_posts_ignore_privileged_fields
        "community.reply",
        "community.join",
        "community.follow",
        # i14 moderation: test_moderation_forms_change_only_their_target_and_field
        "moderation.pin",
        "moderation.lock",
        "moderation.hide",
        "moderation.hide_reply",
        "moderation.move",
        "moderation.title",
        "moderation.bans",
        "moderation.lift",
        "moderation.settings",
        "moderation.moderators",
        "moderation.create",
        "moderation.archive",
        "reports.report_idea",
        "reports.report_comment",
        "reports.report_thread",
        "reports.report_reply",
        "reports.resolve",
        "reports.decide_held",
        "community.promote",
    }
    posts = {e for e, r in ROUTES.items() if "POST" in r.methods}
    assert posts <= covered, f"add mass-assignment tests for {sorted(posts - covered)}"


# --- #30 hidden content -------------------------------------------------------------


def test_a_deleted_idea_leaks_nowhere_but_to_staff(app):
    """A deleted idea's title, text, comments and notes appear on no GET route, in no search
    and no API answer, for a visitor, its own author, another member or a moderator.

    Staff deleted it: an author sees an idea they deleted themselves, to restore it, for
    IDEA_RESTORE_DAYS (tests/test_i12_page.py holds that window and its end)."""
    from ideaboard.services import comments, ideas, roadmap

    world = World.build()
    # Searched for by its first word; found out by its second (the first is echoed back).
    word, marker = "Qzxhidden", "Wqvleak"
    a, b, staff = world.users["a"], world.users["b"], world.users["staff"]
    hidden = ideas.create_idea(
        a, world.general, "idea", f"{word} {marker} title", f"{word} {marker} body"
    )
    comments.add_comment(b, hidden, f"{word} {marker} comment")
    roadmap.change_status(staff, hidden, "planned", f"{word} {marker} note")
    ideas.delete_idea(staff, hidden)
    db.session.commit()
    live = {
        route.target: world.target(route, owner="a")
        for route in ROUTES.values()
        if route.target and route.target not in ("deleted-idea",)
    }
    gets = [e for e, r in ROUTES.items() if "GET" in r.methods and e != "static"]
    query = {"q": word, "sort": "new"}
    leaks, checked = [], 0
    for role in ("anon", "a", "b", "mod"):
        client = app.test_client()
        sign_in(client, world.user(role))
        for endpoint in gets:
            route = ROUTES[endpoint]
            paths = [(url(app, endpoint, live.get(route.target), **query), False)]
            if route.target == "idea":  # the hidden idea's own address, too
                paths.append((url(app, endpoint, Target(idea=hidden)), True))
            for path, own in paths:
                resp = client.get(path)
                checked += 1
                if marker.encode() in resp.data:
                    leaks.append(f"{role} {path}: {resp.status_code}")
                if own:  # not found (or sign in first), never "forbidden": no existence leak
                    assert resp.status_code in (302, 404), (role, path, resp.status_code)
    assert not leaks, "\n".join(leaks)
    assert checked > 4 * len(gets)
    # The control: staff do see it, so the marker would have been found.
    client = app.test_client()
    sign_in(client, staff)
    assert marker.encode() in client.get(f"/ideas/{hidden.id}").data
