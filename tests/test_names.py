"""Display names cannot pass for staff: no invisible characters, no staff lookalikes, and a
staff badge beside every name shown."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import User
from ideaboard.services import accounts, roadmap
from ideaboard.services.names import name_key

from .factories import PASSWORD, login_as, make_idea, make_user, reload, vote_for
from .oracle import parse, text_of

INVISIBLE = {
    "rtl-override": "Anna\u202eavortep",
    "zero-width-space": "An\u200bna",
    "zero-width-joiner": "An\u200dna",
    "next-line": "Anna\u0085Petrova",
    "line-separator": "Anna\u2028Petrova",
    "paragraph-separator": "Anna\u2029Petrova",
    "byte-order-mark": "\ufeffAnna",
    "soft-hyphen": "An\u00adna",
    "word-joiner": "An\u2060na",
    "bell": "An\x07na",
    "hangul-filler": "Anna \u3164",
    "braille-blank": "Anna\u2800x",
    "variation-selector": "Anna\ufe0f",
    "private-use": "Anna\ue000",
    "unassigned": "Anna\u0378",
    "leading-combining-mark": "\u0301Anna",
}
INVISIBLE_MESSAGE = "cannot contain invisible or control characters"
# Control characters of ASCII were refused before, with the message every text field uses.
ANY_CONTROL_MESSAGE = ("control characters", "combining mark")
TOO_CLOSE = "too close to a staff member"


def _users() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(User))


def _register(client, name: str, email: str = "new@example.com"):
    return client.post(
        "/register", data={"email": email, "display_name": name, "password": PASSWORD}
    )


@pytest.mark.parametrize("name", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_sign_up_refuses_invisible_and_control_characters_in_a_name(client, name):
    """A name with an invisible, direction or line-breaking character is refused beside the
    name field, and no account is made."""
    before = _users()
    resp = _register(client, name)
    assert resp.status_code == 422
    message = text_of(resp.get_data(as_text=True), "#display_name-error") or ""
    assert any(words in message for words in ANY_CONTROL_MESSAGE), message
    assert _users() == before


def test_account_page_refuses_invisible_characters_in_a_name(client, auth):
    """Renaming oneself to a name with a right-to-left override is refused beside the field."""
    member = make_user(name="Plain Name")
    auth(member)
    resp = client.post(
        "/account", data={"display_name": "Anna\u202eavortep", "email": member.email}
    )
    assert resp.status_code == 422
    assert INVISIBLE_MESSAGE in text_of(resp.get_data(as_text=True), "#display_name-error")
    assert reload(member).display_name == "Plain Name"


def test_users_create_refuses_invisible_characters_in_a_name(app):
    """The CLI refuses such a name with a message naming its --name option."""
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "x@example.com", "--name", "An\u200bna"]
        + ["--password", PASSWORD]
    )
    assert result.exit_code == 1
    assert "--name:" in result.output and INVISIBLE_MESSAGE in result.output
    assert _users() == 0


@pytest.mark.parametrize(
    "name",
    [
        "Anna Petrova",  # the same
        "anna  PETROVA",  # case and spaces
        "ＡＮＮＡ Ｐｅｔｒｏｖａ",  # fullwidth
        "\u0410nna Petrova",  # Cyrillic А
        "Anna Petr\u043eva",  # Cyrillic о
        "Anna Petrov\u03b1",  # Greek α
        "Ánna Petróva",  # accents
        "Anna Petr0va",  # zero for o
    ],
)
def test_sign_up_refuses_a_staff_members_name_and_its_lookalikes(client, name):
    """A new member cannot take a staff member's name, whatever its case, width, accents or
    look-alike letters."""
    make_user("staff", name="Anna Petrova")
    before = _users()
    resp = _register(client, name)
    assert resp.status_code == 422
    assert TOO_CLOSE in text_of(resp.get_data(as_text=True), "#display_name-error")
    assert _users() == before


def test_names_that_only_resemble_a_members_name_are_fine(app):
    """Only staff names are protected: a member's name may be shared, and a different
    name that merely starts like a staff name is accepted."""
    make_user(name="Anna Petrova")
    make_user("staff", name="Boris")
    assert _register(app.test_client(), "Anna Petrova", "one@example.com").status_code == 303
    assert _register(app.test_client(), "Borislav", "two@example.com").status_code == 303


def test_account_page_keeps_staff_names_to_their_owners(client, auth, app):
    """A member cannot rename themselves to a staff lookalike; a staff member keeps, and
    may restyle, their own name; another staff member cannot take it."""
    make_user("staff", name="Anna Petrova")
    member = make_user(name="Someone")
    auth(member)
    resp = client.post("/account", data={"display_name": "ANNA petrova", "email": member.email})
    assert resp.status_code == 422
    assert TOO_CLOSE in text_of(resp.get_data(as_text=True), "#display_name-error")

    anna = db.session.scalar(select(User).where(User.display_name == "Anna Petrova"))
    for name in ("Anna Petrova", "ANNA PETROVA"):
        accounts.update_account(reload(anna), name, anna.email, "")
        db.session.commit()
        assert reload(anna).display_name == name

    other_staff = make_user("admin", name="Admin")
    staff_client = app.test_client()
    login_as(staff_client, other_staff)
    resp = staff_client.post(
        "/account", data={"display_name": "Anna Petrova", "email": other_staff.email}
    )
    assert resp.status_code == 422


def test_a_member_keeps_a_name_taken_by_staff_later(client, auth):
    """Someone named before a staff member took the same name can still save their account."""
    member = make_user(name="Anna Petrova")
    make_user("staff", name="Anna Petrova")
    auth(member)
    resp = client.post("/account", data={"display_name": "Anna Petrova", "email": member.email})
    assert resp.status_code == 303


def test_users_create_refuses_a_second_staff_member_with_the_same_name(app):
    """The CLI applies the same rule: a new admin cannot be named like existing staff."""
    make_user("staff", name="Anna Petrova")
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "boss@example.com", "--name", "anna petrova"]
        + ["--role", "admin", "--password", PASSWORD]
    )
    assert result.exit_code == 1 and "--name:" in result.output and TOO_CLOSE in result.output


def test_lookalike_names_fold_to_one_key():
    """Width, case, accents, spacing and Latin/Cyrillic/Greek look-alikes fold together;
    different names do not."""
    same = ["Admin", "ＡＤＭＩＮ", "admln", "\u0410dmin", "Ádmin", "AdmIn", "Adm1n", "\u0251dmin"]
    assert {name_key(n) for n in same} == {name_key("admin")}
    assert name_key("Anna  Maria") == name_key("anna maria")
    assert name_key("Иван") == name_key("Ив\u0430н") != name_key("Ivan")
    assert name_key("Boris") != name_key("Borislav")


# --- the staff badge ----------------------------------------------------------------------


def _badged(html, selector: str) -> list[str]:
    """The names in elements matching `selector`, each with ' [staff]' when it has a badge."""
    out = []
    for node in parse(html).select(selector):
        names = node.select(".author")
        for name in names:
            badge = any("badge-staff" in (s.get("class") or "") for s in node.select(".badge"))
            out.append(name.text.strip() + (" [staff]" if badge else ""))
    return out


def test_staff_are_marked_wherever_their_name_appears(client):
    """The idea page's author line, its status history and its voters, and the rows of idea
    lists, put a staff badge beside staff names and none beside members'."""
    staff = make_user("staff", name="Olga Staff")
    member = make_user(name="Mia Member")
    by_staff = make_idea(staff, title="From the team")
    by_member = make_idea(member, title="From a member")
    roadmap.change_status(staff, by_member, "planned")
    db.session.commit()
    vote_for(by_member, staff)
    vote_for(by_member, member)

    page = client.get(f"/ideas/{by_member.id}").get_data(as_text=True)
    assert _badged(page, ".idea .meta") == ["Mia Member"]
    assert _badged(page, "#timeline li") == ["Mia Member", "Olga Staff [staff]"]
    assert sorted(_badged(page, "#voters li")) == ["Mia Member", "Olga Staff [staff]"]
    page = client.get(f"/ideas/{by_staff.id}").get_data(as_text=True)
    assert _badged(page, ".idea .meta") == ["Olga Staff [staff]"]

    rows = client.get("/ideas?sort=new").get_data(as_text=True)
    assert _badged(rows, ".idea-row") == ["Mia Member", "Olga Staff [staff]"]


def test_list_rows_follow_a_promotion_to_staff(client):
    """A list row shown before its author became staff gets the badge right after."""
    admin, member = make_user("admin"), make_user(name="Mia Member")
    make_idea(member, title="Cached row")
    assert _badged(client.get("/ideas").get_data(as_text=True), ".idea-row") == ["Mia Member"]
    accounts.change_role(admin, reload(member), "staff")
    db.session.commit()
    rows = client.get("/ideas").get_data(as_text=True)
    assert _badged(rows, ".idea-row") == ["Mia Member [staff]"]
