"""A page's SQL statement count is bounded and does not grow with the rows it shows."""

import pytest

from ideaboard.extensions import db
from ideaboard.models import Board
from ideaboard.services import comments, roadmap, votes

from .factories import login_as, make_board, make_idea, make_user

# Statements per page, signed in (the user is loaded once per request). Home: boards, the
# most active ideas, the shipped headline's one indexed count (i13), the user.
BUDGET = {"list": 4, "idea": 6, "roadmap": 5, "home": 4, "api": 2}


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


# The admin area, signed in as an admin: the user, then boards with idea counts, members by
# role and a page of communities (/admin); the board (/admin/boards/<id>); one page of
# members.
ADMIN_BUDGET = {"/admin": 4, "/admin/boards/{board}": 2, "/admin/members": 2}


@pytest.mark.parametrize("url", list(ADMIN_BUDGET))
def test_admin_pages_cost_the_same_for_few_or_many_rows(app, count_queries, url):
    """The admin pages' statements stay flat from 2 to 12 boards and 5 to 60 members."""
    from ideaboard.services import admin

    from .conftest import _reset

    counts = []
    for n_boards, n_members in ((2, 5), (12, 60)):
        _reset(app)
        boss = make_user("admin")
        made = [make_board() for _ in range(n_boards)]
        for n in range(n_members):
            make_user(name=f"Member {n:03d}")
        for board in made[:3]:
            make_idea(board=board)
        admin.set_board_archived(boss, made[-1], True)
        db.session.commit()
        client = app.test_client()
        login_as(client, boss)
        counts.append(_measure(client, count_queries, url.format(board=made[0].id)))
    assert counts[0] == counts[1], f"{url}: {counts[0]} statements grew to {counts[1]}"
    assert counts[1] <= ADMIN_BUDGET[url], f"{url}: {counts[1]} > {ADMIN_BUDGET[url]}"


# i13 feeds: the changelog (its page, the headline count), each feed (one statement; the
# board's feed looks the board up first), a profile (the user, the counts, the page);
# signed in, plus the user.
FEEDS_BUDGET = {
    "/changelog": 3,
    "/feeds/ideas.atom": 2,
    "/feeds/b/{board}.atom": 3,
    "/feeds/changes.atom": 2,
    "/feeds/changelog.atom": 2,
    "/u/{author}": 4,
}


@pytest.mark.parametrize("url", list(FEEDS_BUDGET))
def test_changelog_feeds_and_profiles_cost_the_same_for_few_or_many_rows(app, count_queries, url):
    """The changelog, the feeds and a profile cost the same statements at 3 or 20 ideas."""
    from .conftest import _reset

    app.extensions["ideaboard_cache"].enabled = False  # measure rendering, not cache hits
    counts = []
    for n_ideas, n_comments in ((3, 2), (20, 40)):
        _reset(app)
        first, member = _fill(n_ideas, n_comments)
        author = first.author_id
        for extra in range(n_ideas):  # the profile's author posts as many again
            make_idea(db.session.get(type(member), author), title=f"More {extra}")
        board = db.session.get(Board, first.board_id)
        for signed_in in (False, True):
            client = app.test_client()
            if signed_in:
                login_as(client, member)
            path = url.format(board=board.slug, author=author)
            counts.append(_measure(client, count_queries, path))
    anon_small, member_small, anon_big, member_big = counts
    assert anon_small == anon_big, f"{url}: {anon_small} statements grew to {anon_big}"
    assert member_small == member_big, f"{url}: {member_small} grew to {member_big}"
    assert member_big <= FEEDS_BUDGET[url], f"{url}: {member_big} > {FEEDS_BUDGET[url]}"


def test_mail_settings_page_costs_three_statements(app, count_queries):
    """/account/notifications: the member, their choices, their mail language; the same
    with no choice stored or one per kind."""
    from ideaboard.services import notification_mail

    member = make_user()
    db.session.commit()
    client = app.test_client()
    login_as(client, member)
    counts = [_measure(client, count_queries, "/account/notifications")]
    notification_mail.set_preferences(
        member, {g.name: "daily" for g in notification_mail.GROUPS}, "ru"
    )
    db.session.commit()
    counts.append(_measure(client, count_queries, "/account/notifications"))
    assert counts[0] == counts[1] <= 3, counts


# i13 verify: "my influence" is the user, the counts per status and the page of ideas.
INFLUENCE_BUDGET = 3


def test_my_influence_costs_the_same_for_few_or_many_ideas(app, count_queries):
    """The member's influence page (all, and filtered) costs the same statements whether
    they posted and voted for 3 ideas or 30, over two pages."""
    from .conftest import _reset

    app.extensions["ideaboard_cache"].enabled = False
    counts = {}
    for n in (3, 30):
        _reset(app)
        staff = make_user("staff")
        member = make_user()
        for i in range(n):
            idea = make_idea(make_user(), title=f"Backed {i}")
            votes.set_vote(member, idea, votes.VOTE)
            roadmap.change_status(staff, idea, ["planned", "shipped", "declined"][i % 3])
            make_idea(member, title=f"Posted {i}")
        db.session.commit()
        client = app.test_client()
        login_as(client, member)
        counts[n] = [
            _measure(client, count_queries, url)
            for url in ("/account/influence", "/account/influence?status=shipped&page=2")
        ]
    assert counts[3] == counts[30], counts
    assert max(counts[30]) <= INFLUENCE_BUDGET, counts


# i13 notify: the notification centre (the user; the page with its unread count; the
# comments it quotes, in one statement) and the header's count (the user; the count).
NOTIFY_BUDGET = {"/notifications": 3, "/notifications?page=2": 3, "/notifications/unread": 2}


@pytest.mark.parametrize("url", list(NOTIFY_BUDGET))
def test_notification_pages_cost_the_same_for_few_or_many_rows(app, count_queries, url):
    """The centre costs the same statements with a few or many notifications, whatever
    their kinds (status changes, comments, official responses)."""
    from ideaboard.services import notifications

    from .conftest import _reset

    counts = []
    for n_ideas, n_comments in ((3, 2), (20, 40)):
        _reset(app)
        first, member = _fill(n_ideas, n_comments)
        if n_ideas == 3:  # a second page for the small case too
            for n in range(notifications.PER_PAGE):
                comments.add_comment(make_user(), first, f"More words {n}", official=False)
            db.session.commit()
        notifications.fan_out_pending()
        # Both sizes fill two pages, with comments (quoted) and status changes among them.
        kinds = {item.kind for item in notifications.page_of(member, 1).items}
        assert notifications.page_of(member, 2).items and {"comment"} <= kinds, kinds
        client = app.test_client()
        if url.endswith("/unread"):
            client.environ_base["HTTP_HX_REQUEST"] = "true"  # the header loads it with htmx
        login_as(client, member)
        counts.append(_measure(client, count_queries, url))
    small, big = counts
    assert small == big, f"{url}: {small} statements grew to {big}"
    assert big <= NOTIFY_BUDGET[url], f"{url}: {big} > {NOTIFY_BUDGET[url]}"


# i14 promotion: the directory (communities, their shipped counts, the user), a community
# (its threads, moderators, promoted ideas and their counts by status) and its full list
# cost the same statements whatever the number of communities and promoted ideas. A
# thread page rendered whole reads a member's own hidden or held replies apart from the
# page's rows, so that a page whose replies are kept rendered reads no reply rows at all.
PROMOTE_BUDGET = {"/c": 3, "/c/{slug}": 7, "/c/{slug}/changed": 4, "/c/{slug}/t/{thread}": 9}


def _fill_communities(n: int):
    from ideaboard.services import promotion

    from .factories import general_board, make_community, make_thread

    staff = make_user("staff")
    first = None
    for c in range(n):
        club = make_community(name=f"Club {c}")
        for t in range(n):
            thread = make_thread(club, make_user(), f"Club {c} thread {t}")
            idea = promotion.promote_thread(
                staff, thread, club, general_board(), title=thread.title, body="", kind="idea"
            )
            db.session.flush()
            roadmap.change_status(staff, idea, ["planned", "shipped", "in_progress"][t % 3])
            if first is None:
                first = (club, thread)
    db.session.commit()
    return first


@pytest.mark.parametrize("url", sorted(PROMOTE_BUDGET))
def test_community_pages_cost_the_same_for_few_or_many_promoted_ideas(app, count_queries, url):
    """The directory with its "N ideas shipped", a community with "what this club changed",
    its full list and a promoted thread cost the same at 3 or 12 communities and ideas."""
    from .conftest import _reset

    app.extensions["ideaboard_cache"].enabled = False
    counts = []
    for n in (3, 12):
        _reset(app)
        club, thread = _fill_communities(n)
        member = make_user()
        for signed_in in (False, True):
            client = app.test_client()
            if signed_in:
                login_as(client, member)
            path = url.format(slug=club.slug, thread=thread.id)
            counts.append(_measure(client, count_queries, path))
    anon_small, member_small, anon_big, member_big = counts
    assert anon_small == anon_big, f"{url}: {anon_small} statements grew to {anon_big}"
    assert member_small == member_big, f"{url}: {member_small} grew to {member_big}"
    assert member_big <= PROMOTE_BUDGET[url], f"{url}: {member_big} > {PROMOTE_BUDGET[url]}"


# i14: community pages, signed in. The directory: the user, one page of communities, their
# shipped counts. A community: the user, the community by slug, its moderators, one page of
# threads with their authors, the member's standing, what the club changed (its promoted
# ideas, their counts by status). A thread page adds the thread, the page's reply
# ids and authors, the member's own hidden or held replies in that range, the replies
# with their authors (only when the page of replies is rendered) and the member's follow.
COMMUNITY_BUDGET = {
    "/c": 3,
    "/c/{slug}": 7,
    "/c/{slug}/t/{thread}": 9,
    "/c/{slug}/t/{thread}?page={last}": 9,
}


def _fill_community(n_threads: int, n_replies: int):
    from ideaboard.models import Reply

    from .factories import make_community, make_reply, make_thread

    club = make_community()
    for _ in range(3):
        make_community()
    author = make_user()
    threads = [make_thread(club, author=author) for _ in range(n_threads)]
    big = threads[0]
    first = make_reply(big, author=author)
    for n in range(n_replies - 1):
        quote = first.id if n % 7 == 0 else None
        make_reply(big, author=author if n % 2 else make_user(), body=f"Reply {n}", quote_of=quote)
    db.session.commit()
    assert db.session.get(Reply, first.id) is not None
    return club, big, author


@pytest.mark.parametrize("url", list(COMMUNITY_BUDGET))
def test_community_pages_cost_the_same_for_few_or_many_rows(app, count_queries, url):
    """The directory, a club's thread list and a thread's first and last pages: the same
    statements with 2 threads and 3 replies as with 35 threads and 120 replies."""
    from ideaboard.services.threads import REPLIES_PER_PAGE

    from .conftest import _reset

    app.extensions["ideaboard_cache"].enabled = False  # measure rendering, not cache hits
    counts = []
    for n_threads, n_replies in ((2, 3), (35, 120)):
        _reset(app)
        club, big, member = _fill_community(n_threads, n_replies)
        last = max(1, -(-n_replies // REPLIES_PER_PAGE))
        target = url.format(slug=club.slug, thread=big.id, last=last)
        for signed_in in (False, True):
            client = app.test_client()
            if signed_in:
                login_as(client, member)
            counts.append(_measure(client, count_queries, target))
    anon_small, member_small, anon_big, member_big = counts
    assert anon_small == anon_big, f"{url}: {anon_small} statements grew to {anon_big}"
    assert member_small == member_big, f"{url}: {member_small} grew to {member_big}"
    assert member_big <= COMMUNITY_BUDGET[url], f"{url}: {counts} > {COMMUNITY_BUDGET[url]}"


def _member_client(app, user):
    """A member's browser whose session already holds a CSRF token, as after any page with
    a form: its pages (and their shared parts) are kept."""
    import secrets

    client = app.test_client()
    login_as(client, user)
    with client.session_transaction() as sess:
        sess["csrf_token"] = secrets.token_hex(20)
    return client


def test_a_members_community_pages_read_nothing_their_kept_fragments_show(app, count_queries):
    """Once one member has seen a club and a thread, the next member's first visit reads
    none of what the shared parts show (the thread list, what the club changed, its
    moderators, the replies' rows): only what is theirs. A member with a hidden reply of
    their own still gets it, marked, and the others do not."""
    from ideaboard.services import moderation

    from .factories import make_community, make_moderator, make_reply, make_thread

    club = make_community()
    mod = make_moderator(club)
    thread = make_thread(club)
    replies = [make_reply(thread, body=f"Reply number {n}") for n in range(4)]
    hidden_author = db.session.get(type(mod), replies[2].author_id)
    moderation.hide_reply(mod, thread, replies[2], club, "Off topic")
    db.session.commit()
    thread_url = f"/c/{club.slug}/t/{thread.id}"
    first, second = _member_client(app, make_user()), _member_client(app, make_user())
    for url in (f"/c/{club.slug}", thread_url):
        assert first.get(url).status_code == 200
    with count_queries() as seen:
        club_page = second.get(f"/c/{club.slug}")
        thread_page = second.get(thread_url)
    assert club_page.status_code == thread_page.status_code == 200
    assert thread.title in club_page.text and "Reply number 3" in thread_page.text
    assert "Reply number 2" not in thread_page.text
    reads = "\n".join(seen.statements)
    for shown in ("replies.body", "threads.pinned DESC", "JOIN community_moderators", "FROM ideas"):
        assert shown not in reads, f"read {shown!r} though its render is kept:\n{reads}"
    page = _member_client(app, hidden_author).get(thread_url).text
    assert "Reply number 2" in page and "Hidden by a moderator: Off topic" in page
