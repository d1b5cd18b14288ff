"""The JSON API, exactly as the contract describes it."""

from datetime import datetime

from ideaboard.extensions import db
from ideaboard.services import roadmap, votes

from .factories import make_board, make_comment, make_idea, make_user

ITEM_KEYS = {
    "id",
    "title",
    "board",
    "kind",
    "status",
    "votes",
    "comments",
    "author",
    "created_at",
    "url",
}


def test_list_shape_and_next_link(client, app):
    """Items carry the contract's fields; `next` points at the following page."""
    author = make_user(name="Ann Author")
    for n in range(25):
        make_idea(author, title=f"Idea {n:02d}")
    resp = client.get("/api/v1/ideas?sort=new")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    data = resp.get_json()
    assert set(data) == {"items", "next"} and len(data["items"]) == 20
    item = data["items"][0]
    assert set(item) == ITEM_KEYS
    assert (item["title"], item["board"], item["kind"], item["status"], item["author"]) == (
        "Idea 24",
        "general",
        "idea",
        "heard",
        "Ann Author",
    )
    assert item["url"] == f"http://127.0.0.1:5000/ideas/{item['id']}-idea-24"
    datetime.fromisoformat(item["created_at"])
    assert data["next"] == "http://127.0.0.1:5000/api/v1/ideas?sort=new&page=2"
    last = client.get(data["next"]).get_json()
    assert len(last["items"]) == 5 and last["next"] is None


def test_list_filters_match_the_page(client, app):
    """The API takes the same sort, status, board and q as /ideas."""
    staff = make_user("staff")
    mobile = make_board("mobile", "Mobile")
    a = make_idea(title="Dark mode", board=mobile)
    b = make_idea(title="Export CSV")
    roadmap.change_status(staff, b, "planned")
    votes.toggle_vote(staff, b)
    db.session.commit()

    def titles(qs):
        return [i["title"] for i in client.get("/api/v1/ideas" + qs).get_json()["items"]]

    assert titles("?sort=top") == ["Export CSV", "Dark mode"]
    assert titles("?status=planned") == ["Export CSV"]
    assert titles("?board=mobile") == ["Dark mode"]
    assert titles("?q=export") == ["Export CSV"]
    assert a.id


def test_detail_has_body_html_and_history(client, app):
    """One idea adds sanitised body_html and its status history."""
    staff = make_user("staff")
    idea = make_idea(body="**bold** <script>alert(1)</script>")
    make_comment(idea)
    roadmap.change_status(staff, idea, "under_review", "Looking")
    db.session.commit()
    data = client.get(f"/api/v1/ideas/{idea.id}").get_json()
    assert set(data) == ITEM_KEYS | {"body_html", "history", "merged_into", "merged_into_url"}
    assert "<strong>bold</strong>" in data["body_html"] and "<script" not in data["body_html"]
    assert data["comments"] == 1
    assert [(h["from"], h["to"], h["note"]) for h in data["history"]] == [
        (None, "heard", ""),
        ("heard", "under_review", "Looking"),
    ]
    datetime.fromisoformat(data["history"][1]["at"])


def test_errors_are_json(client, app):
    """Unknown ideas, boards and methods answer JSON errors with the matching status."""
    resp = client.get("/api/v1/ideas/424242")
    assert resp.status_code == 404 and resp.mimetype == "application/json"
    assert resp.get_json()["error"]["code"] == 404 and resp.get_json()["error"]["message"]
    assert client.get("/api/v1/ideas?board=nope").status_code == 404
    resp = client.post("/api/v1/ideas")
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == 405
    assert client.get("/api/v1/nothing").get_json()["error"]["code"] == 404
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_deleted_idea_is_not_in_the_api(client, app):
    """Deleted ideas are absent from the list and 404 on their own."""
    from ideaboard.services import ideas

    author = make_user()
    idea = make_idea(author)
    ideas.delete_idea(author, idea)
    db.session.commit()
    assert client.get("/api/v1/ideas").get_json()["items"] == []
    assert client.get(f"/api/v1/ideas/{idea.id}").status_code == 404
