"""List rows rendered once and reused (perf/rows.py): the same HTML as the macro, never
another member's token, never a stale value."""

from __future__ import annotations

import re

from flask import render_template_string
from flask_login import AnonymousUserMixin

from ideaboard.extensions import db
from ideaboard.perf import rows
from ideaboard.services import votes
from ideaboard.services.ideas import get_idea

from .factories import login_as, make_idea, make_user

ROW = re.compile(r'<li class="idea-row" id="idea-(\d+)">.*?</li>', re.S)


def _stand_ins_in(html: str) -> bool:
    """Whether any stand-in's nonce is left in `html`, escaped or not."""
    nonces = re.findall(r"[0-9a-f]{32}", str(rows._TOKEN) + str(rows._BACK))
    assert len(nonces) == 2, nonces
    return any(nonce in html for nonce in nonces)


def _rows_of(html: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in ROW.finditer(html)}


def _macro_rows(app, ideas, voted, viewer, token, back) -> str:
    """The idea_row macro itself, rendered for `viewer` (a user, or None for a visitor) as
    the list did before the memo."""
    with app.test_request_context(back):
        return render_template_string(
            '{% from "_macros/ideas.html" import idea_row %}'
            "{% for i in ideas %}{{ idea_row(i, i.id in voted, viewer, token, back) }}{% endfor %}",
            ideas=ideas,
            voted=voted,
            viewer=viewer or AnonymousUserMixin(),
            token=token,
            back=back,
        )


def test_memoised_rows_are_the_macros_rows(app, client):
    member = make_user()
    ideas = [make_idea(title=f"Row idea {n} <b>&</b>") for n in range(4)]
    votes.toggle_vote(member, ideas[1])
    db.session.commit()
    login_as(client, member)
    for _ in range(2):  # a miss, then a hit
        html = client.get("/ideas?sort=new").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        db.session.expire_all()
        listed = [get_idea(i.id) for i in sorted(ideas, key=lambda i: i.id, reverse=True)]
        expected = _macro_rows(app, listed, {ideas[1].id}, member, token, "/ideas?sort=new")
        assert _rows_of(html) == _rows_of(expected)
        assert "&lt;b&gt;&amp;&lt;/b&gt;" in html


def test_members_share_rows_but_never_tokens(app):
    idea = make_idea()
    pages = {}
    for name in ("a", "b"):
        client = app.test_client()
        member = make_user(name=f"Member {name}")
        if name == "a":
            votes.toggle_vote(member, idea)
            db.session.commit()
        login_as(client, member)
        pages[name] = client.get("/ideas").get_data(as_text=True)
    # The same row, as each sees it: voted for a, not for b (the count is the same).
    assert 'class="vote is-voted"' in pages["a"] and "is-voted" not in pages["b"]
    tokens = {
        name: set(re.findall(r'name="csrf_token" value="([^"]+)"', html))
        for name, html in pages.items()
    }
    assert all(len(t) == 1 for t in tokens.values())  # one token per page, every row
    assert tokens["a"] != tokens["b"]
    assert not _stand_ins_in(pages["a"] + pages["b"])  # no stand-in left, in any form
    assert f'id="idea-{idea.id}"' in pages["a"]


def test_a_row_shows_what_changed_since_it_was_cached(app, client):
    author = make_user(name="First Name")
    idea = make_idea(author=author, title="Before the edit")
    visitor = app.test_client()
    assert "First Name" in visitor.get("/ideas").get_data(as_text=True)
    author.display_name = "Second Name"
    idea.title = "After the edit"
    db.session.commit()
    app.extensions["ideaboard_cache"].versions.bump()  # as any write through the app does
    html = visitor.get("/ideas").get_data(as_text=True)
    assert "Second Name" in html and "After the edit" in html
    assert "First Name" not in html and "Before the edit" not in html
    votes.toggle_vote(make_user(), idea)
    db.session.commit()
    html = visitor.get("/ideas").get_data(as_text=True)
    assert '<span class="vote-count">2</span>' in html  # and the author's
    login_as(client, make_user())
    client.set_cookie("lang", "ru")
    assert "Войдите" not in client.get("/ideas").get_data(as_text=True)
    assert "Проголосовать" in client.get("/ideas").get_data(as_text=True)


ODD_QUERY = "/ideas?q=%22row%22+%3Cb%3E+%D0%BE%D1%82%D1%87%D1%91%D1%82&sort=new"


def test_every_row_sends_back_to_its_own_page(app, client):
    """Rows are shared by all pages and searches, yet each links back to the page it is on."""
    idea = make_idea(title="Row отчёт", body="a row body")
    db.session.commit()
    visitor = app.test_client()
    member = make_user()
    login_as(client, member)
    for path in ("/ideas?sort=new", ODD_QUERY, "/ideas?sort=new&_=2"):
        for who in (visitor, client):
            html = who.get(path).get_data(as_text=True)
            token = None
            if who is client:
                token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            viewer = member if who is client else None
            expected = _macro_rows(app, [get_idea(idea.id)], set(), viewer, token, path)
            assert _rows_of(html) == _rows_of(expected), (path, who is client)
            assert not _stand_ins_in(html)  # no stand-in left, in any form


def test_a_new_search_reuses_rendered_rows(app, client, monkeypatch):
    make_idea(title="Reused row", body="shared words")
    db.session.commit()
    assert "Reused row" in client.get("/ideas?q=shared").get_data(as_text=True)
    rendered = []
    real_put = rows._rows.put
    monkeypatch.setattr(rows._rows, "put", lambda k, v: (rendered.append(k), real_put(k, v)))
    html = client.get("/ideas?q=words&sort=new").get_data(as_text=True)
    assert "Reused row" in html and "next=/ideas?q%3Dwords%26sort%3Dnew" in html
    assert rendered == []
