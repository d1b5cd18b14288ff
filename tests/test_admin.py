"""The admin area: boards and members managed in the browser, by admins only."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Board, Idea, User, Vote
from ideaboard.services import admin, boards, ideas
from ideaboard.services.errors import NotAllowed, ValidationError

from .factories import PASSWORD, general_board, login_as, make_board, make_idea, make_user, reload
from .test_fastvote import make_fast_app  # noqa: F401 - a fixture used below
from .test_fastvote import sign_in as sign_in_for_real
from .test_fastvote import vote as fast_vote


def _events(caplog, name: str) -> list[dict]:
    return [
        r.security
        for r in caplog.records
        if r.name == "ideaboard.security" and getattr(r, "security", {}).get("event") == name
    ]


@pytest.fixture
def boss(app, client):
    """An admin, signed in on `client`."""
    user = make_user("admin", name="Ada Admin")
    login_as(client, user)
    return user


def _text(resp) -> str:
    return resp.get_data(as_text=True)


# --- who gets in ----------------------------------------------------------------------


PAGES = ["/admin", "/admin/members", "/admin/boards/1"]
ACTIONS = [
    ("/admin/boards", {"slug": "new-one", "name": "New one"}),
    ("/admin/boards/1", {"name": "Renamed", "description": ""}),
    ("/admin/boards/1/archive", {"intent": "archive"}),
]


@pytest.mark.parametrize("role", ["member", "moderator", "staff"])
def test_everyone_but_admins_gets_403_and_a_logged_denial(app, client, caplog, role):
    """Members, moderators and staff get 403 on every admin page and action, each refusal
    logged as authz.denied, and nothing changes."""
    user = make_user(role)
    target = make_user("member")
    login_as(client, user)
    caplog.set_level(logging.INFO, "ideaboard.security")
    calls = [("GET", p, None) for p in PAGES] + [("POST", p, d) for p, d in ACTIONS]
    calls += [
        ("POST", f"/admin/members/{target.id}/role", {"role": "admin"}),
        ("POST", f"/admin/members/{target.id}/access", {"intent": "disable"}),
    ]
    for method, path, data in calls:
        resp = client.open(path, method=method, data=data)
        assert resp.status_code == 403, (method, path, resp.status_code)
    assert len(_events(caplog, "authz.denied")) == len(calls)
    assert reload(target).role == "member" and reload(target).disabled_at is None
    assert general_board().name == "General" and general_board().archived_at is None
    assert db.session.scalar(select(func.count()).select_from(Board)) == 1


def test_visitors_are_sent_to_sign_in(client):
    """A visitor asking for the admin area is sent to sign in, and comes back after."""
    resp = client.get("/admin/members?q=a")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")


def test_the_service_refuses_non_admins_whatever_the_view_does(app):
    """The rule lives in the service layer: calling it directly as staff is refused."""
    staff, member = make_user("staff"), make_user()
    for call in (
        lambda: admin.site_overview(staff),
        lambda: admin.create_board(staff, "x-board", "X board"),
        lambda: admin.update_board(staff, general_board(), "New", ""),
        lambda: admin.set_board_archived(staff, general_board(), True),
        lambda: admin.search_members(staff, ""),
        lambda: admin.change_member_role(staff, member, "staff"),
        lambda: admin.set_member_access(staff, member, False),
    ):
        with pytest.raises(NotAllowed):
            call()


def test_only_admins_see_the_administration_link(app, client):
    """The header links to the admin area for admins only."""
    login_as(client, make_user("staff"))
    assert "/admin" not in _text(client.get("/ideas"))
    login_as(client, make_user("admin"))
    assert 'href="/admin"' in _text(client.get("/ideas"))


# --- boards -------------------------------------------------------------------------


def test_create_rename_describe_archive_and_unarchive_a_board(boss, client, caplog):
    """Each board action works without JavaScript, confirms itself and is logged."""
    caplog.set_level(logging.INFO, "ideaboard.security")
    resp = client.post(
        "/admin/boards", data={"slug": "mobile", "name": "Mobile app", "description": "Phones"}
    )
    assert resp.status_code == 303
    board = db.session.scalar(select(Board).where(Board.slug == "mobile"))
    assert resp.headers["Location"] == f"/admin/boards/{board.id}"
    page = _text(client.get(resp.headers["Location"]))
    assert "Board created." in page and "Mobile app" in page
    assert _events(caplog, "board.created")[0]["board_id"] == board.id

    resp = client.post(
        f"/admin/boards/{board.id}", data={"name": "Mobile apps", "description": "iOS, Android"}
    )
    assert resp.status_code == 303
    assert "Board saved." in _text(client.get(resp.headers["Location"]))
    assert (reload(board).name, board.description) == ("Mobile apps", "iOS, Android")
    assert _events(caplog, "board.updated")[0]["fields"] == "name,description"

    resp = client.post(f"/admin/boards/{board.id}/archive", data={"intent": "archive"})
    assert resp.status_code == 303 and reload(board).archived_at is not None
    assert "Board archived." in _text(client.get(resp.headers["Location"]))
    client.post(f"/admin/boards/{board.id}/archive", data={"intent": "archive"})  # a retry
    assert len(_events(caplog, "board.archived")) == 1

    resp = client.post(f"/admin/boards/{board.id}/archive", data={"intent": "unarchive"})
    assert resp.status_code == 303 and reload(board).archived_at is None
    assert len(_events(caplog, "board.unarchived")) == 1
    assert client.post(f"/admin/boards/{board.id}/archive", data={}).status_code == 400


def test_bad_board_input_is_shown_beside_the_fields(boss, client):
    """A taken slug, a bad slug or an empty name answers 422 with messages; nothing made."""
    resp = client.post("/admin/boards", data={"slug": "general", "name": "Again"})
    assert resp.status_code == 422 and "already exists" in _text(resp)
    resp = client.post("/admin/boards", data={"slug": "Bad Slug!", "name": "x" * 101})
    assert resp.status_code == 422
    resp = client.post(f"/admin/boards/{general_board().id}", data={"name": "", "description": ""})
    assert resp.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Board)) == 1
    assert client.get("/admin/boards/99999").status_code == 404


def test_the_overview_lists_boards_with_counts_archived_marked(boss, client):
    """The overview shows each board's live ideas and marks archived boards."""
    other = make_board(name="Old product")
    make_idea(board=other)
    make_idea(board=other)
    make_idea()
    admin.set_board_archived(boss, other, True)
    db.session.commit()
    page = _text(client.get("/admin"))
    row = re.search(rf'<tr id="board-{other.id}">(.*?)</tr>', page, re.S).group(1)
    assert "Old product" in row and "<td>2</td>" in row and "Archived" in row


def test_an_archived_board_takes_no_new_ideas_but_its_ideas_stay_readable(boss, client):
    """Archived: gone from the new-idea choice and the lists, new ideas refused with a
    clear message, existing ideas readable, an idea on it still editable in place."""
    old = make_board(slug="legacy", name="Legacy product")
    author = make_user()
    idea = make_idea(author=author, board=old, title="Keep the old export")
    admin.set_board_archived(boss, old, True)
    db.session.commit()
    member = make_user()
    login_as(client, member)
    form = _text(client.get("/ideas/new"))
    assert "Legacy product" not in form
    assert 'value="legacy"' not in _text(client.get("/ideas"))  # the board filter
    resp = client.post(
        "/ideas/new", data={"title": "Another export", "body": "", "board": old.id, "kind": "idea"}
    )
    assert resp.status_code == 422 and "archived" in _text(resp)
    assert db.session.scalar(select(func.count()).select_from(Idea)) == 1
    assert client.get(f"/ideas/{idea.id}").status_code == 200
    board_page = _text(client.get("/b/legacy"))
    assert "Keep the old export" in board_page and "This board is archived" in board_page
    with pytest.raises(ValidationError):
        ideas.create_idea(member, old, "idea", "Through the service", "")
    db.session.rollback()
    # Its author may still edit it where it is, but nothing moves onto the archived board.
    ideas.update_idea(
        author, reload(idea), title="Keep the old CSV export", body="", kind="idea",
        board=old, version=idea.version,
    )  # fmt: skip
    fresh = make_idea(author=member)
    with pytest.raises(ValidationError):
        ideas.update_idea(
            member, fresh, title=fresh.title, body="", kind="idea", board=old,
            version=fresh.version,
        )  # fmt: skip
    db.session.rollback()
    assert [b.slug for b in boards.list_boards()] == ["general"]


def test_a_board_archived_while_an_idea_is_posted_refuses_it(app):
    """The decision is made when the idea is written: a board archived after the poster's
    request loaded it (its object still says open) takes no idea."""
    from sqlalchemy import update

    from ideaboard.models import utcnow

    board = make_board()
    member = make_user()
    db.session.execute(
        update(Board)
        .where(Board.id == board.id)
        .values(archived_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert board.archived_at is None  # what the poster's request still believes
    with pytest.raises(ValidationError) as refused:
        ideas.create_idea(member, board, "idea", "Posted a moment too late", "")
    assert "archived" in refused.value.errors["board"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Idea)) == 0


# --- members --------------------------------------------------------------------------


def test_search_by_name_or_email_prefix_in_any_case(boss, client):
    """The start of a name or an email finds a member in any case; the middle does not."""
    make_user(name="Жанна Орлова", email="zh@example.com")
    make_user(name="Bob Stone", email="rocky@example.org")
    make_user(name="STRASSE Fan", email="fan@example.com")
    assert _names(client, "жан") == ["Жанна Орлова"]
    assert _names(client, "BOB") == ["Bob Stone"]
    assert _names(client, "rock") == ["Bob Stone"]
    assert _names(client, "straße") == ["STRASSE Fan"]  # casefolded, not just lowered
    assert _names(client, "stone") == []
    assert _names(client, "%") == [] and _names(client, "_") == []  # no wildcards
    assert "Ada Admin" in _names(client, "")


def test_a_renamed_member_is_found_by_the_new_name(boss, client):
    """The search name follows the display name when a member renames themself."""
    from ideaboard.services import accounts

    member = make_user(name="Old Name")
    accounts.update_account(member, "Ünal Newname", member.email, "")
    db.session.commit()
    assert _names(client, "ünal") == ["Ünal Newname"] and _names(client, "old") == []


def _names(client, q: str, **query) -> list[str]:
    page = _text(client.get("/admin/members", query_string={"q": q, **query}))
    return re.findall(r'<tr id="member-\d+">\s*<td>([^<]+?)(?: <span|</td>)', page)


def test_members_are_paged_in_name_order(boss, client):
    """25 to a page, in name order, with next and previous links that keep the query."""
    for n in range(30):
        make_user(name=f"Page Person {n:02d}")
    first = _text(client.get("/admin/members?q=page"))
    assert _names(client, "page")[0] == "Page Person 00" and len(_names(client, "page")) == 25
    assert 'href="/admin/members?q=page&amp;page=2"' in first
    second = _text(client.get("/admin/members?q=page&page=2"))
    assert 'href="/admin/members?q=page&amp;page=1"' in second and "page=3" not in second
    assert _names(client, "page", page=2) == [f"Page Person {n}" for n in range(25, 30)]
    assert client.get("/admin/members?page=abc").status_code == 200
    assert client.get("/admin/members?page=99999999").status_code == 200


def test_change_role_confirms_logs_and_signs_the_member_out(boss, client, make_app, caplog):
    """A role change shows a confirmation, is logged, and ends the member's sessions."""
    caplog.set_level(logging.INFO, "ideaboard.security")
    member = make_user(name="Mia Member")
    theirs = client.application.test_client()
    login_as(theirs, member)
    assert theirs.get("/account").status_code == 200
    resp = client.post(
        f"/admin/members/{member.id}/role", data={"role": "staff", "q": "mia", "page": "1"}
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/admin/members?q=mia#member-{member.id}"
    assert "Role changed to Staff." in _text(client.get(resp.headers["Location"]))
    assert reload(member).role == "staff"
    event = _events(caplog, "role.changed")[0]
    assert (event["user_id"], event["role"], event["previous"], event["by"]) == (
        member.id,
        "staff",
        "member",
        boss.id,
    )
    assert theirs.get("/account").status_code == 302  # signed out
    assert client.post(f"/admin/members/{member.id}/role", data={"role": "king"}).status_code == 422


def test_an_admin_cannot_change_their_own_role_or_disable_themself(boss, client):
    """No self-demotion and no self-disabling: 403, nothing changes."""
    assert client.post(f"/admin/members/{boss.id}/role", data={"role": "member"}).status_code == 403
    resp = client.post(f"/admin/members/{boss.id}/access", data={"intent": "disable"})
    assert resp.status_code == 403
    assert (reload(boss).role, boss.disabled_at) == ("admin", None)


def test_the_last_active_admin_cannot_be_demoted_or_disabled(app):
    """The UPDATE's own WHERE decides: an admin demoted a moment ago (a stale object in
    hand) can neither demote nor disable the only other admin."""
    first, second = make_user("admin"), make_user("admin")
    admin.change_member_role(second, first, "member")  # second demotes first...
    db.session.commit()
    # ...while a request of first's, which loaded its user before, still acts as admin.
    for call in (
        lambda: admin.change_member_role(_as_admin(first), second, "member"),
        lambda: admin.set_member_access(_as_admin(first), second, False),
    ):
        with pytest.raises(NotAllowed):
            call()
        db.session.rollback()
    assert (reload(second).role, second.disabled_at) == ("admin", None)


class _StaleAdmin:
    """What a request that loaded its user before a demotion still believes."""

    def __init__(self, user: User) -> None:
        self.id, self.role, self.disabled_at, self.is_authenticated = user.id, "admin", None, True


def _as_admin(user: User) -> _StaleAdmin:
    return _StaleAdmin(user)


def test_the_guard_keeps_one_active_admin(app):
    """Of two admins, once one is disabled the other is the last: the SQL guard refuses
    anything that would leave none, even if asked by a disabled admin's stale request."""
    first, second = make_user("admin"), make_user("admin")
    admin.set_member_access(first, second, False)
    db.session.commit()
    with pytest.raises(NotAllowed):  # second is disabled: no authority any more
        admin.set_member_access(_as_admin(second), first, False)
    db.session.rollback()
    assert reload(first).disabled_at is None
    # The guard itself: demoting an active admin needs another active admin to remain.
    where = admin._guarded(_as_admin(second), first, losing_admin=True)
    assert db.session.scalar(select(func.count()).select_from(User).where(where)) == 0


def test_disable_and_enable_an_account(boss, client, caplog):
    """Disabling confirms, logs, ends the sessions; the account's sign-in is refused with a
    clear message (logged); enabling lets it sign in again."""
    caplog.set_level(logging.INFO, "ideaboard.security")
    member = make_user(name="Dee Member", email="dee@example.com")
    theirs = client.application.test_client()
    login_as(theirs, member)
    resp = client.post(f"/admin/members/{member.id}/access", data={"intent": "disable"})
    assert resp.status_code == 303
    assert "Account disabled." in _text(client.get(resp.headers["Location"]))
    assert reload(member).disabled_at is not None
    assert _events(caplog, "account.disabled")[0]["user_id"] == member.id
    assert theirs.get("/account").status_code == 302
    resp = theirs.post("/login", data={"email": "dee@example.com", "password": PASSWORD})
    assert resp.status_code == 422 and "This account has been disabled" in _text(resp)
    assert _events(caplog, "login.disabled")[0]["user_id"] == member.id
    resp = theirs.post("/login", data={"email": "dee@example.com", "password": "wrong one!!"})
    assert "disabled" not in _text(resp)  # only the right password learns it
    client.post(f"/admin/members/{member.id}/access", data={"intent": "disable"})  # a retry
    assert len(_events(caplog, "account.disabled")) == 1

    resp = client.post(f"/admin/members/{member.id}/access", data={"intent": "enable"})
    assert resp.status_code == 303 and reload(member).disabled_at is None
    assert "Account enabled." in _text(client.get(resp.headers["Location"]))
    assert _events(caplog, "account.enabled")[0]["user_id"] == member.id
    resp = theirs.post("/login", data={"email": "dee@example.com", "password": PASSWORD})
    assert resp.status_code == 303
    assert client.post(f"/admin/members/{member.id}/access", data={}).status_code == 400
    assert client.post("/admin/members/99999/access", data={"intent": "enable"}).status_code == 404


def test_disabling_ends_the_vote_fast_paths_session_too(make_fast_app):  # noqa: F811
    """A member signed in for real votes on the fast path; once disabled, the same
    browser's vote is refused and no vote row is written."""
    app = make_fast_app()
    with app.app_context():
        boss_user = make_user("admin")
        member = make_user()
        idea = make_idea()
        browser, token = sign_in_for_real(app, member)
        assert fast_vote(browser, idea.id, token, intent="vote").status_code == 200
        admin.set_member_access(boss_user, member, False)
        db.session.commit()
        resp = fast_vote(browser, idea.id, token, intent="unvote")
        assert resp.status_code in (400, 401)
        other = make_idea()
        resp = fast_vote(browser, other.id, token, intent="vote")
        assert resp.status_code in (400, 401)
        mine = select(Vote.idea_id).where(Vote.user_id == member.id)
        assert list(db.session.scalars(mine)) == [idea.id]  # neither undone nor added


# --- Russian --------------------------------------------------------------------------


def test_the_admin_pages_read_in_russian(boss, client):
    """Every admin page and confirmation renders in Russian."""
    client.set_cookie("lang", "ru")
    member = make_user(name="Иван")
    index = _text(client.get("/admin", headers={"Accept-Language": "ru"}))
    assert "Администрирование" in index and "Новая доска" in index
    members = _text(client.get("/admin/members", headers={"Accept-Language": "ru"}))
    assert "Участники" in members and "Отключить" in members
    board = _text(client.get(f"/admin/boards/{general_board().id}"))
    assert "Архивировать доску" in board
    resp = client.post(f"/admin/members/{member.id}/role", data={"role": "staff"})
    assert "Роль изменена" in _text(client.get(resp.headers["Location"]))


# --- the migration --------------------------------------------------------------------


def test_the_migration_fills_search_names_of_existing_accounts(tmp_path):
    """Upgrading a database that has accounts gives each its casefolded search name, and
    the downgrade takes the columns away again."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    from ideaboard import create_app

    from .conftest import _config

    app = create_app(_config(f"sqlite:///{tmp_path / 'old.db'}"))
    with app.app_context():
        upgrade(revision="034f2d45fbbc")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (email, email_key, display_name, password_hash, role,"
                " session_token, created_at) VALUES ('s@x.org', 's@x.org', 'Straße Ｏｌｄ',"
                " 'x', 'member', 't', CURRENT_TIMESTAMP)"
            )
        upgrade()
        with db.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT search_name, disabled_at FROM users").one()
        assert tuple(row) == ("strasse old", None)
        downgrade(revision="034f2d45fbbc")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("users")}
        assert "search_name" not in columns and "disabled_at" not in columns
        db.engine.dispose()
