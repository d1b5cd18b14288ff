"""The core flow in a real browser: sign up, post, vote, comment, filter — with and without JS."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from ..factories import PASSWORD, make_idea, make_user, vote_for

pytestmark = pytest.mark.browser

IDEA_PATH = re.compile(r"/ideas/(\d+)(?:-[\w-]+)?")


def on_idea_page(url: str) -> bool:
    """Whether `url` is an idea page (its path, not a `next=` in its query)."""
    return IDEA_PATH.fullmatch(urlsplit(url).path) is not None


def sign_up(page: Page, email: str, name: str) -> None:
    """Create an account through /register and land signed in on the home page."""
    page.goto("/register")
    form = page.locator("form[action='/register']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=display_name]").fill(name)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")
    expect(page.locator(".site-header .who")).to_have_text(name)


def sign_in(page: Page, email: str) -> None:
    """Fill in the sign-in form already on screen and submit it."""
    form = page.locator("form[action='/login']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


def post_idea(page: Page, title: str, body: str, kind: str = "problem") -> int:
    """Post an idea through /ideas/new (board, kind, title, Markdown body); return its id."""
    page.goto("/ideas/new")
    form = page.locator("form[action='/ideas/new']")
    form.locator("input[name=title]").fill(title)
    form.locator("textarea[name=body]").fill(body)
    form.locator("select[name=board]").select_option(label="General")
    form.locator(f"input[name=kind][value={kind}]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url(on_idea_page)
    expect(page.locator("h1.idea-heading")).to_have_text(title)
    return int(IDEA_PATH.fullmatch(urlsplit(page.url).path).group(1))


def count_navigations(page: Page) -> list[str]:
    """Record every main-frame navigation of `page` from now on."""
    seen: list[str] = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and seen.append(frame.url))
    return seen


def test_vote_with_htmx_toggles_in_place(page, browser_log):
    """With JS a new member's vote toggles in place, with CSRF, and persists: the idea
    starts with its author's vote (1), which they take back (0) and give again (1)."""
    sign_up(page, "ada@example.com", "Ada")
    idea_id = post_idea(page, "Export to CSV", "We need **CSV export**:\n\n- ideas\n- votes\n")
    expect(page.locator(".idea-body strong")).to_have_text("CSV export")
    expect(page.locator(".idea-body li")).to_have_text(["ideas", "votes"])
    expect(page.locator(".idea .meta .author")).to_have_text("Ada")

    vote = page.locator(f"form#vote-{idea_id}")
    button = vote.locator("button.vote-button")
    count = vote.locator(".vote-count")
    expect(count).to_have_text("1")  # the author's own vote
    expect(button).to_have_attribute("aria-pressed", "true")

    page.evaluate("window.__marker = 1")
    navigations = count_navigations(page)
    with page.expect_request(lambda r: r.method == "POST" and "/vote" in r.url) as sent:
        button.click()
    headers = sent.value.headers
    assert headers.get("hx-request") == "true"
    assert headers.get("x-csrftoken"), "htmx must send the CSRF token from body[hx-headers]"
    expect(count).to_have_text("0")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(vote).not_to_have_class(re.compile(r"\bis-voted\b"))
    assert page.evaluate("window.__marker") == 1, "the un-vote reloaded the page"
    assert navigations == []

    page.reload()
    expect(count).to_have_text("0")
    expect(button).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("window.__marker") is None, "the reload did not happen"

    page.evaluate("window.__marker = 2")
    navigations.clear()
    button.click()
    expect(count).to_have_text("1")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(vote).to_have_class(re.compile(r"\bis-voted\b"))
    assert page.evaluate("window.__marker") == 2, "the vote reloaded the page"
    assert navigations == []

    page.reload()
    expect(count).to_have_text("1")
    assert browser_log.console_errors == []


def test_vote_without_javascript_posts_and_redirects_back(new_page):
    """Without JS the same flow works with plain forms: the vote posts and redirects back."""
    page = new_page(java_script_enabled=False)
    sign_up(page, "grace@example.com", "Grace")
    idea_id = post_idea(page, "Offline mode", "Works *without* a network.", kind="idea")
    idea_path = urlsplit(page.url).path
    expect(page.locator(".idea-body em")).to_have_text("without")

    vote = page.locator(f"form#vote-{idea_id}")
    count = vote.locator(".vote-count")
    expect(count).to_have_text("1")  # the author's own vote
    with (
        page.expect_event("framenavigated", lambda frame: frame == page.main_frame),
        page.expect_response(lambda r: r.request.method == "POST") as answer,
    ):
        vote.locator("button.vote-button").click()
    assert answer.value.status == 303
    assert "hx-request" not in answer.value.request.headers
    assert urlsplit(page.url).path == idea_path
    assert urlsplit(page.url).fragment == f"vote-{idea_id}"  # back at the control
    expect(count).to_have_text("0")
    expect(vote.locator("button.vote-button")).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".voters-count")).to_have_text("0 voters")

    vote.locator("button.vote-button").click()
    expect(count).to_have_text("1")
    expect(vote.locator("button.vote-button")).to_have_attribute("aria-pressed", "true")


def test_comment_with_htmx_appends_in_place(app, page, browser_log):
    """With JS a Markdown comment is appended to #comments and the count updates, no reload."""
    author = make_user(name="Linus", email="linus@example.com")
    idea = make_idea(author=author, title="Keyboard shortcuts")
    member = make_user(name="Margaret", email="margaret@example.com")

    page.goto(f"/ideas/{idea.id}")
    page.locator(".discussion a", has_text="Sign in").click()
    page.wait_for_url(re.compile(r"/login\?"))
    sign_in(page, member.email)
    page.wait_for_url(on_idea_page)
    expect(page.locator("#comment-count")).to_have_text("0 comments")

    page.evaluate("window.__marker = 1")
    navigations = count_navigations(page)
    form = page.locator("#comment-form")
    form.locator("textarea[name=body]").fill(
        "Yes **please**, see [the docs](https://example.com/docs)"
    )
    form.locator("button[type=submit]").click()

    comments = page.locator("#comments .comment")
    expect(comments).to_have_count(1)
    expect(comments.first.locator(".author")).to_have_text("Margaret")
    expect(comments.first.locator(".prose strong")).to_have_text("please")
    link = comments.first.locator(".prose a")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", re.compile(r"\bnofollow\b"))
    expect(page.locator("#comment-count")).to_have_text("1 comment")
    expect(page.locator("#comment-form textarea[name=body]")).to_have_value("")

    page.locator("#comment-form textarea[name=body]").fill("And *vim* bindings.")
    page.locator("#comment-form button[type=submit]").click()
    expect(comments).to_have_count(2)
    expect(comments.nth(1).locator(".prose em")).to_have_text("vim")
    expect(page.locator("#comment-count")).to_have_text("2 comments")
    assert page.evaluate("window.__marker") == 1, "commenting reloaded the page"
    assert navigations == []

    page.reload()
    expect(comments).to_have_count(2)
    assert browser_log.console_errors == []


def test_sort_filter_updates_list_and_url(app, page, browser_log):
    """With JS changing the sort swaps the list in place and pushes a reloadable URL."""
    popular = make_idea(title="Popular older idea")
    for _ in range(2):
        vote_for(popular, make_user())
    make_idea(title="Newest idea", kind="problem")

    page.goto("/ideas")
    titles = page.locator("#idea-list .idea-title")
    expect(titles).to_have_count(2)
    page.evaluate("window.__marker = 1")
    sort = page.locator("form.filters select[name=sort]")

    def choose(value: str) -> None:
        with page.expect_response(
            lambda r: urlsplit(r.url).path == "/ideas" and "hx-request" in r.request.headers
        ):
            sort.select_option(value)

    choose("new")
    expect(page).to_have_url(re.compile(r"/ideas\?(.*&)?sort=new"))
    expect(titles).to_have_text(["Newest idea", "Popular older idea"])

    choose("top")
    expect(page).to_have_url(re.compile(r"/ideas\?(.*&)?sort=top"))
    expect(titles).to_have_text(["Popular older idea", "Newest idea"])
    expect(page.locator("#idea-list .vote-count").first).to_have_text("3")  # and the author's
    assert page.evaluate("window.__marker") == 1, "filtering reloaded the page"
    assert parse_qs(urlsplit(page.url).query)["sort"] == ["top"]

    page.reload()  # the pushed URL answers a whole page, not a fragment
    expect(page.locator("h1")).to_have_text("All ideas")
    expect(sort).to_have_value("top")
    expect(titles).to_have_text(["Popular older idea", "Newest idea"])
    assert browser_log.console_errors == []


def test_anonymous_vote_is_sent_to_sign_in(app, page):
    """A visitor's vote button leads to sign-in, and signing in returns to the idea, voted."""
    idea = make_idea(title="Dark mode")
    member = make_user(email="ken@example.com")

    page.goto(f"/ideas/{idea.id}")
    idea_path = urlsplit(page.url).path
    # Visitors' pages carry no form (no CSRF token, so they can be cached): a plain link.
    page.locator(f"#vote-{idea.id} a.vote-button").click()
    page.wait_for_url(re.compile(r"/login\?next=.*&vote="))
    (back,) = parse_qs(urlsplit(page.url).query)["next"]
    assert back.startswith(f"/ideas/{idea.id}")

    sign_in(page, member.email)
    page.wait_for_url(on_idea_page)
    assert urlsplit(page.url).path.startswith(idea_path)
    expect(page.locator(f"form#vote-{idea.id} .vote-count")).to_have_text("2")
    expect(page.locator(f"#vote-button-{idea.id}")).to_have_attribute("aria-pressed", "true")


def test_csp_detector_catches_inline_style(page, browser_log):
    """The CSP listener the other tests rely on does see a violation (an inline style)."""
    browser_log.allow_csp("style-src-attr")
    page.goto("/")
    page.evaluate("""document.getElementById("flash").innerHTML = '<p style="color: red">x</p>'""")
    page.wait_for_function("window.__cspViolations.length > 0")
    seen = page.evaluate("window.__cspViolations")
    assert [v["directive"] for v in seen] == ["style-src-attr"]
