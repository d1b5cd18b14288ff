"""Every route, as a visitor, the author, another member and staff would use it."""

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Idea

from .factories import PASSWORD, general_board, login_as, make_comment, make_idea, make_user, reload


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def world(app):
    """An author with an idea and a comment, another member, and a staff member."""
    author, other, staff = make_user(name="Author"), make_user(name="Other"), make_user("staff")
    idea = make_idea(author, title="Dark mode please", body="**Night** reading")
    comment = make_comment(idea, author, "my own comment")
    return {"author": author, "other": other, "staff": staff, "idea": idea, "comment": comment}


PUBLIC_PAGES = ["/", "/ideas", "/ideas?sort=new", "/b/general", "/roadmap", "/login", "/register"]


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_public_pages_render_for_visitors(client, world, url):
    """Visitors can read every public page."""
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"


def test_idea_page_with_and_without_slug(client, world):
    """/ideas/<id> and /ideas/<id>-<slug> both show the idea, with a canonical link."""
    idea = world["idea"]
    for url in (f"/ideas/{idea.id}", f"/ideas/{idea.id}-dark-mode-please", f"/ideas/{idea.id}-x"):
        resp = client.get(url)
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert "Dark mode please" in html and "<strong>Night</strong>" in html
        assert (
            f'rel="canonical" href="http://127.0.0.1:5000/ideas/{idea.id}-dark-mode-please"' in html
        )


def test_idea_page_shows_votes_timeline_and_comments(client, world):
    """The idea page shows its vote count, voters, status history and comments."""
    idea, staff = world["idea"], world["staff"]
    from ideaboard.services import roadmap, votes

    votes.toggle_vote(world["other"], idea)
    roadmap.change_status(staff, idea, "planned", "Coming in spring")
    db.session.commit()
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert '<span class="vote-count">2</span>' in html  # Other's and the author's own
    assert "2 voters" in html and "Other" in html
    assert "Coming in spring" in html and "Planned" in html
    assert "my own comment" in html


def test_unknown_idea_and_board_are_404(client, world):
    """Missing ideas and boards answer a styled 404."""
    for url in ("/ideas/999999", "/b/nope", "/ideas/abc"):
        resp = client.get(url)
        assert resp.status_code == 404
        assert b"Not found" in resp.data


def test_htmx_visitor_gets_401_with_hx_redirect(htmx, world):
    """An htmx vote from a visitor answers 401 and tells htmx where to sign in."""
    resp = htmx.post(f"/ideas/{world['idea'].id}/vote")
    assert resp.status_code == 401
    assert resp.headers["HX-Redirect"].startswith("/login?next=")


def test_post_idea_form_flow(client, world):
    """A member posts an idea through the form and lands on it, at heard."""
    login_as(client, world["other"])
    form = client.get("/ideas/new").get_data(as_text=True)
    assert 'name="board"' in form and 'name="kind"' in form and 'value="product"' in form
    resp = client.post(
        "/ideas/new",
        data={
            "title": "Widget support",
            "body": "Please",
            "board": general_board().id,
            "kind": "problem",
        },
    )
    assert resp.status_code == 303
    idea = db.session.scalar(select(Idea).where(Idea.title == "Widget support"))
    assert resp.headers["Location"] == f"/ideas/{idea.id}-widget-support"
    assert (idea.status, idea.kind, idea.author_id) == ("heard", "problem", world["other"].id)


def test_bad_idea_input_is_explained_beside_fields_and_kept(client, world):
    """Bad input answers 422 with messages by the fields, the typed text kept, nothing saved."""
    login_as(client, world["other"])
    before = _count(Idea)
    resp = client.post(
        "/ideas/new", data={"title": "ab", "body": "keep this text", "board": "", "kind": "x"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Title must be at least 3 characters." in html
    assert "Choose a board." in html and "Choose what kind of post this is." in html
    assert "keep this text" in html and 'aria-invalid="true"' in html
    assert _count(Idea) == before


def test_vote_without_js_redirects_back(client, world):
    """A plain vote post toggles and redirects back to the page it came from, at the row."""
    idea = world["idea"]
    login_as(client, world["other"])
    resp = client.post(f"/ideas/{idea.id}/vote", data={"next": "/ideas?sort=top"})
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/ideas?sort=top#vote-{idea.id}"
    assert reload(idea).vote_count == 2  # and the author's
    resp = client.post(f"/ideas/{idea.id}/vote", data={"next": "https://evil.test/"})
    assert resp.headers["Location"].startswith(f"/ideas/{idea.id}-")
    assert resp.headers["Location"].endswith(f"#vote-{idea.id}")
    assert reload(idea).vote_count == 1


def test_vote_with_htmx_returns_the_button(htmx, world):
    """An htmx vote answers the button fragment with the new count and pressed state."""
    idea = world["idea"]
    login_as(htmx, world["other"])
    resp = htmx.post(f"/ideas/{idea.id}/vote")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert f'id="vote-{idea.id}"' in html and 'aria-pressed="true"' in html
    assert '<span class="vote-count">2</span>' in html  # and the author's
    assert "HX-Request" in resp.headers["Vary"]


def test_comment_flow_plain_and_htmx(client, htmx, world):
    """Comments post with or without htmx; htmx gets the new comment out of band."""
    idea = world["idea"]
    login_as(client, world["other"])
    resp = client.post(f"/ideas/{idea.id}/comments", data={"body": "Plain *hello*"})
    assert resp.status_code == 303 and "#comment-" in resp.headers["Location"]
    login_as(htmx, world["other"])
    resp = htmx.post(f"/ideas/{idea.id}/comments", data={"body": "Via htmx"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert 'hx-swap-oob="beforeend:#comments"' in html and "Via htmx" in html
    assert "3 comments" in html
    assert reload(idea).comment_count == 3


def test_empty_comment_htmx_gets_422_form(htmx, world):
    """An empty htmx comment answers 422 with the form and its message."""
    login_as(htmx, world["other"])
    resp = htmx.post(f"/ideas/{world['idea'].id}/comments", data={"body": ""})
    assert resp.status_code == 422 and b"Comment is required." in resp.data
    assert b'id="comment-form"' in resp.data


def test_edit_idea_author_yes_other_no_staff_yes(client, world):
    """The author and staff edit an idea; another member gets 403 and nothing changes."""
    idea = world["idea"]
    data = {
        "title": "Edited title",
        "body": "b",
        "board": general_board().id,
        "kind": "idea",
        "version": 1,
    }
    login_as(client, world["other"])
    assert client.get(f"/ideas/{idea.id}/edit").status_code == 403
    assert client.post(f"/ideas/{idea.id}/edit", data=data).status_code == 403
    assert reload(idea).title == "Dark mode please"
    login_as(client, world["author"])
    assert client.get(f"/ideas/{idea.id}/edit").status_code == 200
    assert client.post(f"/ideas/{idea.id}/edit", data=data).status_code == 303
    assert reload(idea).title == "Edited title"
    login_as(client, world["staff"])
    resp = client.post(f"/ideas/{idea.id}/edit", data={**data, "title": "Staff", "version": 2})
    assert resp.status_code == 303 and reload(idea).title == "Staff"


def test_stale_edit_answers_409_and_keeps_newer_text(client, world):
    """Submitting an edit made from an older version answers 409; the newer text survives."""
    idea = world["idea"]
    login_as(client, world["author"])
    data = {"title": "First", "body": "", "board": general_board().id, "kind": "idea", "version": 1}
    assert client.post(f"/ideas/{idea.id}/edit", data=data).status_code == 303
    resp = client.post(f"/ideas/{idea.id}/edit", data={**data, "title": "Second"})
    assert resp.status_code == 409
    assert b"Someone else changed this idea" in resp.data and b"Second" in resp.data
    assert reload(idea).title == "First"


def test_delete_and_restore(client, world):
    """Another member cannot delete; the author can; it 404s for all but staff and its
    author, who both restore it (the author, for a while: tests/test_i12_page.py)."""
    idea = world["idea"]
    login_as(client, world["other"])
    assert client.post(f"/ideas/{idea.id}/delete").status_code == 403
    login_as(client, world["author"])
    assert client.post(f"/ideas/{idea.id}/delete").status_code == 303
    assert b"You deleted this idea" in client.get(f"/ideas/{idea.id}").data
    login_as(client, world["other"])
    assert client.get(f"/ideas/{idea.id}").status_code == 404
    assert client.post(f"/ideas/{idea.id}/restore").status_code == 404
    login_as(client, world["staff"])
    assert b"This idea was deleted" in client.get(f"/ideas/{idea.id}").data
    assert client.post(f"/ideas/{idea.id}/restore").status_code == 303
    client.get("/")
    assert reload(idea).deleted_at is None


def test_status_change_staff_only(client, world):
    """Only staff move an idea; a member's crafted POST is 403 and nothing changes."""
    idea = world["idea"]
    for who in ("author", "other"):
        login_as(client, world[who])
        resp = client.post(f"/ideas/{idea.id}/status", data={"status": "shipped"})
        assert resp.status_code == 403
    assert reload(idea).status == "heard"
    login_as(client, world["staff"])
    resp = client.post(f"/ideas/{idea.id}/status", data={"status": "planned", "note": "Q3"})
    assert resp.status_code == 303
    assert reload(idea).status == "planned"
    resp = client.post(f"/ideas/{idea.id}/status", data={"status": "bogus"})
    assert resp.status_code == 422 and reload(idea).status == "planned"


def test_staff_sees_status_form_members_do_not(client, world):
    """The status form is shown to staff only."""
    idea = world["idea"]
    login_as(client, world["other"])
    assert b"Move on the roadmap" not in client.get(f"/ideas/{idea.id}").data
    login_as(client, world["staff"])
    assert b"Move on the roadmap" in client.get(f"/ideas/{idea.id}").data


def test_edit_comment_author_only(client, world):
    """Only the comment's author edits it; it then shows as edited."""
    idea, comment = world["idea"], world["comment"]
    url = f"/ideas/{idea.id}/comments/{comment.id}/edit"
    for who in ("other", "staff"):
        login_as(client, world[who])
        assert client.post(url, data={"body": "hijack"}).status_code == 403
    login_as(client, world["author"])
    assert client.post(url, data={"body": "better words"}).status_code == 303
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "better words" in html and "(edited)" in html


def test_official_response_marking(client, world):
    """Staff mark their comment official and it is shown first and badged."""
    idea, staff = world["idea"], world["staff"]
    answer = make_comment(idea, staff, "Official words")
    login_as(client, world["other"])
    url = f"/ideas/{idea.id}/comments/{answer.id}/official"
    assert client.post(url, data={"official": "1"}).status_code == 403
    login_as(client, staff)
    assert client.post(url, data={"official": "1"}).status_code == 303
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert html.index("Official words") < html.index("my own comment")
    assert "Official response" in html


def test_roadmap_columns_ordered_by_votes_and_board_filter(client, world):
    """The roadmap shows a column per status, ideas by votes, filterable by board."""
    from ideaboard.services import roadmap, votes

    from .factories import make_board

    staff = world["staff"]
    other_board = make_board("mobile", "Mobile")
    low = make_idea(title="Low votes idea")
    high = make_idea(title="High votes idea")
    elsewhere = make_idea(title="Mobile only idea", board=other_board)
    for idea in (low, high, elsewhere):
        roadmap.change_status(staff, idea, "planned")
    for _ in range(3):
        votes.toggle_vote(make_user(), high)
    db.session.commit()
    html = client.get("/roadmap").get_data(as_text=True)
    for label in ("Heard", "Under review", "Planned", "In progress", "Shipped", "Declined"):
        assert label in html
    assert html.index("High votes idea") < html.index("Low votes idea")
    filtered = client.get("/roadmap?board=mobile").get_data(as_text=True)
    assert "Mobile only idea" in filtered and "High votes idea" not in filtered


def test_list_filters_search_and_pagination_links(client, world):
    """The list filters by status, kind and board, searches, and links to the next page."""
    for n in range(25):
        make_idea(title=f"Bulk idea {n:02d}")
    html = client.get("/ideas?sort=new").get_data(as_text=True)
    assert "Bulk idea 24" in html and "Bulk idea 04" not in html
    assert 'rel="next" href="/ideas?sort=new&amp;page=2"' in html
    page2 = client.get("/ideas?sort=new&page=2").get_data(as_text=True)
    assert "Bulk idea 04" in page2 and "Bulk idea 24" not in page2
    found = client.get("/ideas?q=DARK").get_data(as_text=True)
    assert "Dark mode please" in found and "Bulk idea" not in found
    none = client.get("/ideas?q=zzzz").get_data(as_text=True)
    assert "No ideas match your search." in none
    assert "Dark mode please" not in client.get("/ideas?kind=product").get_data(as_text=True)


def test_htmx_list_request_gets_fragment(htmx, world):
    """An htmx request to the list answers just the list fragment."""
    resp = htmx.get("/ideas?q=dark")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html and 'id="idea-list"' in html
    restore = htmx.get("/ideas", headers={"HX-History-Restore-Request": "true"})
    assert b"<html" in restore.data


@pytest.mark.parametrize(
    "url", ["/roadmap?board=%00", "/ideas?q=a%00b", "/api/v1/ideas?sort=%00", "/b/gen%00eral"]
)
def test_nul_in_query_is_a_400_not_a_500(client, world, url):
    """A NUL byte in the address answers 400 (PostgreSQL cannot even compare it)."""
    assert client.get(url).status_code in (400, 404)


def test_method_not_allowed_is_styled(client, world):
    """A GET to a POST-only action answers a styled 405."""
    resp = client.get(f"/ideas/{world['idea'].id}/vote")
    assert resp.status_code == 405 and b"Method not allowed" in resp.data


def test_healthz(client):
    """/healthz says ok when the database answers."""
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.data == b"ok"


def test_no_inline_scripts_or_styles(client, world):
    """No page carries inline scripts, inline styles or event-handler attributes."""
    import re

    login_as(client, world["staff"])
    for url in ("/", "/ideas", f"/ideas/{world['idea'].id}", "/roadmap", "/ideas/new"):
        html = client.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "hx-on" not in html, url


def test_language_switch_keeps_page(client):
    """Choosing a language redirects back to the same local page only."""
    resp = client.post("/lang", data={"lang": "ru", "next": "/roadmap"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/roadmap"
    assert "lang=ru" in resp.headers["Set-Cookie"]
    resp = client.post("/lang", data={"lang": "ru", "next": "//evil.test"})
    assert resp.headers["Location"] == "/"


def test_password_is_never_echoed(client):
    """A failed registration keeps the email and name but never the password."""
    resp = client.post(
        "/register", data={"email": "x@example.com", "display_name": "X", "password": PASSWORD}
    )
    assert resp.status_code == 422
    assert PASSWORD.encode() not in resp.data and b"x@example.com" in resp.data


def test_htmx_vote_on_idea_page_refreshes_voters_card(htmx, world):
    """On the idea page an htmx vote also sends the voters card, out of band."""
    idea = world["idea"]
    login_as(htmx, world["other"])
    resp = htmx.post(f"/ideas/{idea.id}/vote", data={"on_idea_page": "1"})
    html = resp.get_data(as_text=True)
    assert 'id="voters" hx-swap-oob="true"' in html and "2 voters" in html and "Other" in html
    resp = htmx.post(f"/ideas/{idea.id}/vote")
    assert 'id="voters"' not in resp.get_data(as_text=True)
