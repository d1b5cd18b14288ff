"""A page's SQL statement count is bounded and does not grow with the rows it shows."""

import pytest

from ideaboard.extensions import db
from ideaboard.services import comments, roadmap, votes

from .factories import login_as, make_board, make_idea, make_user

# Statements per page, signed in (the user is loaded once per request).
BUDGET = {"list": 4, "idea": 6, "roadmap": 5, "home": 3, "api": 2}


def _fill(n_ideas: int, n_comments: int):
    staff = make_user("staff")
    voters = [make_user() for _ in range(3)]
    boards = [make_board(), make_board()]
    made = []
    for n in range(n_ideas):
        idea = make_idea(make_user(), board=boards[n % 2], title=f"Idea {n}")
        for v in voters[: n % 4]:
            votes.toggle_vote(v, idea)
        roadmap.change_status(staff, idea, ["planned", "shipped", "in_progress"][n % 3])
        made.append(idea)
    for c in range(n_comments):
        comments.add_comment(voters[c % 3], made[0], f"Comment {c}", official=False)
    comments.add_comment(staff, made[0], "Official", official=True)
    db.session.commit()
    return made[0], voters[0]


def _measure(client, count_queries, url):
    client.get(url)  # warm-up: first-request work is not the page's cost
    with count_queries() as counter:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return counter.count


@pytest.mark.parametrize(
    "page, url",
    [
        ("list", "/ideas"),
        ("list", "/ideas?sort=top&status=planned"),
        ("idea", "/ideas/{id}"),
        ("roadmap", "/roadmap"),
        ("home", "/"),
        ("api", "/api/v1/ideas"),
    ],
)
def test_statement_count_is_flat_and_bounded(app, make_app, count_queries, page, url):
    """The same page costs the same statements with 3 or 20 ideas (and 2 or 40 comments)."""
    app.extensions["ideaboard_cache"].enabled = False  # measure rendering, not cache hits
    counts = []
    for n_ideas, n_comments in ((3, 2), (20, 40)):
        from .conftest import _reset

        _reset(app)
        first, member = _fill(n_ideas, n_comments)
        for signed_in in (False, True):
            client = app.test_client()
            if signed_in:
                login_as(client, member)
            counts.append(_measure(client, count_queries, url.format(id=first.id)))
    anon_small, member_small, anon_big, member_big = counts
    assert anon_small == anon_big, f"{url}: {anon_small} statements grew to {anon_big}"
    assert member_small == member_big, f"{url}: {member_small} grew to {member_big}"
    assert member_big <= BUDGET[page], f"{url}: {member_big} statements > {BUDGET[page]}"
