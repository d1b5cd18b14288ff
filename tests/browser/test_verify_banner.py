"""Registration in the default mode (issue 13, item 4) in a real browser: signed in at once,
told where the confirmation link went, and a banner until the address is confirmed; the
banner is axe-clean in English and Russian, and "Resend the link" works with and without
JavaScript."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from ..factories import PASSWORD
from .test_accessibility import assert_no_findings, axe_findings

pytestmark = pytest.mark.browser


def _register(page: Page, email: str, name: str) -> None:
    page.goto("/register")
    form = page.locator("main form[action='/register']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=display_name]").fill(name)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_new_member_is_signed_in_with_a_banner_until_confirmed(app, new_page, js):
    page = new_page(java_script_enabled=js)
    _register(page, f"banner-{js}@example.com", "Bea")
    expect(page.locator(".site-header .who")).to_have_text("Bea")
    expect(page.locator("#flash")).to_contain_text(
        f"We sent a link to banner-{js}@example.com to confirm the address."
    )
    banner = page.locator(".verify-banner")
    expect(banner).to_contain_text("Confirm your email address")
    findings = axe_findings(page, "/ after sign-up, en") if js else []

    banner.get_by_role("button", name="Resend the link").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")
    expect(page.locator("#flash")).to_contain_text("We have sent a new link to")

    page.goto("/ideas")
    page.locator("footer form.lang button[value=ru]").click()  # the language switch
    page.wait_for_url(lambda url: urlsplit(url).path == "/ideas")
    expect(page.locator(".verify-banner")).to_contain_text("Отправить ссылку ещё раз")
    if js:
        findings += axe_findings(page, "/ideas with the banner, ru")
        assert_no_findings(findings, 2)


def test_the_taken_address_lands_in_the_same_place_not_signed_in(app, new_page):
    """The same redirect and words as a new address; no banner, nobody signed in."""
    page = new_page()
    _register(page, "first@example.com", "First")
    page2 = new_page()
    _register(page2, "first@example.com", "Second")
    expect(page2.locator("#flash")).to_contain_text(
        "We sent a link to first@example.com to confirm the address."
    )
    expect(page2.locator(".site-header .who")).to_have_count(0)
    expect(page2.locator(".verify-banner")).to_have_count(0)
    assert (
        re.sub(r"\s+", " ", page.locator("#flash").inner_text()).strip()
        == re.sub(r"\s+", " ", page2.locator("#flash").inner_text()).strip()
    )
