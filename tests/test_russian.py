"""Russian that reads as made for its readers, on real pages and mail (Accept-Language: ru).

The wording a native-speaker review asked for (issue 12), plural forms for 1, 3, 5 and 21,
and `Vary: Accept-Language, Cookie` on every answer whose language came from them: Flask's
pages, the visitor cache's and the vote fast path's.
"""

from __future__ import annotations

import email
import re
from email.policy import default as default_policy

import pytest
from flask import render_template, request_started
from flask_babel import force_locale

from ideaboard.extensions import db
from ideaboard.services import roadmap
from ideaboard.services.text import check_text

from .conftest import _reset
from .factories import login_as, make_idea, make_user, vote_for
from .test_fastvote import (
    handled_by_flask,
    make_fast_app,  # noqa: F401 - the fixture, used by name
    sign_in,
)

RU = {"Accept-Language": "ru-RU,ru;q=0.9"}


def _ru(client, path: str) -> str:
    resp = client.get(path, headers=RU)
    assert resp.status_code == 200, path
    return resp.get_data(as_text=True)


def _text(html: str) -> str:
    """The page's text with tags dropped and spaces folded, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_home_headline_and_statuses_read_naturally(client):
    """The home page asks «Помогите решить, что мы сделаем дальше» and quotes the statuses
    as the badges show them: from «Получено» to «Реализовано»."""
    page = _text(_ru(client, "/"))
    assert "Помогите решить, что мы сделаем дальше" in page
    assert "от «Получено» до «Реализовано»" in page
    for old in ("что делать дальше", "Услышано", "Выпущено"):
        assert old not in page
    roadmap_page = _text(_ru(client, "/roadmap"))
    assert "от «Получено» до «Реализовано»" in roadmap_page


def test_status_badges_say_received_and_implemented(app, client):
    """A new idea is «Получено»; a shipped one «Реализовано», on lists and the roadmap."""
    staff = make_user(role="staff")
    heard = make_idea(title="Fresh idea")
    shipped = make_idea(title="Done idea")
    for step in ("under_review", "planned", "in_progress", "shipped"):
        roadmap.change_status(staff, shipped, step, "")
    db.session.commit()
    for path in (f"/ideas/{heard.id}", "/ideas?status=heard"):
        assert "Получено" in _ru(client, path), path
    for path in (f"/ideas/{shipped.id}", "/ideas?status=shipped", "/roadmap"):
        assert "Реализовано" in _ru(client, path), path


def test_trending_is_popular(client):
    """The sort control offers «Популярные», not «В тренде»."""
    page = _ru(client, "/ideas")
    assert "Популярные" in page and "В тренде" not in page


@pytest.mark.parametrize(
    ("n", "words"), [(1, "1 человек"), (3, "3 человека"), (5, "5 человек"), (21, "21 человек")]
)
def test_voters_heading_and_count(app, client, n, words):
    """The idea page's voters card: «Проголосовали» and «N человек/человека»."""
    idea = make_idea()  # its author's vote is the first
    for _ in range(n - 1):
        vote_for(idea, make_user())
    page = _ru(client, f"/ideas/{idea.id}")
    assert "Проголосовали" in page and "Проголосовавшие" not in page
    assert f'<p class="voters-count">{words}</p>' in page


def test_sign_in_and_sign_up_wording(client):
    """«Запомнить меня» on sign-in; the header says «Регистрация», the button
    «Зарегистрироваться» (the same English "Sign up", told apart by pgettext)."""
    login = _ru(client, "/login")
    assert "Запомнить меня" in login
    assert re.search(r'<a class="button button-small" href="/register">Регистрация</a>', login)
    register = _ru(client, "/register")
    assert re.search(r'<button class="button" type="submit">Зарегистрироваться</button>', register)
    assert "<title>Регистрация" in register
    english = client.get("/register", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert english.count("Sign up") >= 3  # title, header link and button


def test_go_back_is_short(app):
    """The error page's way back is «Назад», not the pleonasm «Вернуться назад»."""
    with app.test_request_context("/", headers=RU), force_locale("ru"):
        html = render_template(
            "errors/error.html", status=400, title="x", message="y", back="/ideas", kept={}
        )
    assert '<a href="/ideas">Назад</a>' in html


@pytest.mark.parametrize(
    ("n", "minimum", "maximum"),
    [
        (1, "минимум 1 символ.", "максимум 1 символ."),
        (3, "минимум 3 символа.", "максимум 3 символа."),
        (5, "минимум 5 символов.", "максимум 5 символов."),
        (21, "минимум 21 символ.", "максимум 21 символ."),
    ],
)
def test_length_messages_agree_with_any_number(app, n, minimum, maximum):
    """Field length messages take the number's plural form: 1, 3, 5 and 21."""
    with app.test_request_context("/", headers=RU), force_locale("ru"):
        errors: dict[str, str] = {}
        # minimum 1 means "required", which has its own message: start from 2 there.
        check_text(errors, "f", "", minimum=max(n, 2), maximum=99, label="Заголовок")
        check_text(errors, "g", "x" * (n + 1), minimum=0, maximum=n, label="Заголовок")
    if n > 1:
        assert errors["f"] == f"В поле «Заголовок» нужно ввести {minimum}"
    assert errors["g"] == f"В поле «Заголовок» можно ввести {maximum}"


def test_length_messages_on_real_forms(app, client, auth):
    """A too short title and password say «3 символа» and «10 символов» on the pages."""
    auth(make_user())
    resp = client.post(
        "/ideas/new",
        data={"title": "ab", "body": "", "board": "1", "kind": "idea"},
        headers=RU,
    )
    assert resp.status_code == 422
    assert "минимум 3 символа." in resp.get_data(as_text=True)
    client.post("/logout")
    resp = app.test_client().post(
        "/register",
        data={"email": "new@example.com", "display_name": "Новый", "password": "short"},
        headers=RU,
    )
    assert resp.status_code == 422
    assert "Минимум 10 символов." in resp.get_data(as_text=True)


def test_password_rules_use_plural_forms(app):
    """The password length messages are plural entries in Russian."""
    from ideaboard.services import accounts

    with app.test_request_context("/", headers=RU), force_locale("ru"):
        errors: dict[str, str] = {}
        accounts.check_password_rules(errors, "x" * (accounts.PASSWORD_MAX + 1))
    assert re.fullmatch(r"Максимум \d+ символ(а|ов)?\.", errors["password"])


def test_reset_mail_footer_and_minutes(make_app, tmp_path):
    """The reset mail in Russian: «…минут…» as a plural form, and the footer «Это
    автоматическое письмо … Отвечать на него не нужно.»"""
    folder = tmp_path / "mail"
    app = make_app(MAIL_URL=None, MAIL_DIR=str(folder))
    _reset(app)
    with app.app_context():
        make_user(email="reader@example.com")
        resp = app.test_client().post(
            "/reset", data={"email": "reader@example.com"}, headers=RU, buffered=True
        )
        assert resp.status_code == 200
        assert re.search(r"Ссылка действует \d+ минут[уы]? и только один раз", resp.text)
        [path] = folder.iterdir()
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        for part in ("plain", "html"):
            body = _text(message.get_body(preferencelist=(part,)).get_content())
            assert "Это автоматическое письмо" in body, part
            assert "Отвечать на него не нужно." in body, part
            assert "Ответы на него никто не читает" not in body, part
            assert re.search(r"Ссылка действует \d+ минут[уы]? и только один раз", body), part


@pytest.mark.parametrize(
    ("n", "word"), [(1, "минуту"), (3, "минуты"), (5, "минут"), (21, "минуту")]
)
def test_reset_link_minutes_agree(app, n, word):
    """«Ссылка действует 1 минуту / 3 минуты / 5 минут / 21 минуту»."""
    from flask_babel import ngettext

    with app.test_request_context("/"), force_locale("ru"):
        text = ngettext(
            "The link works once, for %(num)d minute.",
            "The link works once, for %(num)d minutes.",
            n,
        )
    assert text == f"Ссылка действует {n} {word} и только один раз."


def _vary(resp) -> set[str]:
    return {v.strip() for v in resp.headers.get("Vary", "").split(",")}


def test_vary_names_the_language_headers_on_pages_and_cached_pages(make_app):
    """Pages in the reader's language say Vary: Accept-Language, Cookie, whether Flask
    renders them, Flask serves them from the page cache or the visitor cache answers."""
    app = make_app()
    _reset(app)
    flask_requests = []
    request_started.connect(lambda sender, **_: flask_requests.append(1), app, weak=False)
    with app.app_context():
        idea = make_idea()
        visitor = app.test_client()
        for path in ("/", "/ideas", f"/ideas/{idea.id}", "/roadmap"):
            for _ in range(3):  # rendered, then from the caches
                before = len(flask_requests)
                resp = visitor.get(path, headers=RU)
                assert resp.status_code == 200
                assert {"Accept-Language", "Cookie", "HX-Request"} <= _vary(resp), path
            assert len(flask_requests) == before, f"{path}: the last visit went through Flask"
        member = app.test_client()
        login_as(member, make_user())
        for _ in range(2):
            resp = member.get("/ideas", headers=RU)
            assert {"Accept-Language", "Cookie"} <= _vary(resp)


def test_vary_on_the_vote_fast_path(make_fast_app):  # noqa: F811 - the imported fixture
    """The vote fast path's fragment is in the reader's language and says so in Vary."""
    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        client, token = sign_in(app, make_user())
        via_flask, resp = handled_by_flask(app, lambda: _vote_ru(client, idea, token))
        assert resp.status_code == 200 and not via_flask
        assert {"Accept-Language", "Cookie", "HX-Request"} <= _vary(resp)


def _vote_ru(client, idea, token):
    return client.post(
        f"/ideas/{idea.id}/vote",
        data={"csrf_token": token, "next": ""},
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/ideas", **RU},
    )


def test_static_files_do_not_vary_on_language(client):
    """Only answers whose language was chosen vary on it: a stylesheet does not."""
    resp = client.get("/static/css/app.css", headers=RU)
    assert resp.status_code == 200
    assert "Accept-Language" not in _vary(resp)
    resp.close()


def test_the_demo_is_bilingual(app, client):
    """About a quarter of the demo's ideas and comments are Russian, so a Russian reader
    meets Russian ideas on the first pages, with Russian discussion under them."""
    from sqlalchemy import select

    from ideaboard.models import Comment, Idea

    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    cyrillic = re.compile(r"[а-яё]", re.IGNORECASE)
    titles = list(db.session.scalars(select(Idea.title)))
    said = list(db.session.scalars(select(Comment.body)))
    assert 0.25 <= sum(bool(cyrillic.search(t)) for t in titles) / len(titles) <= 0.4
    assert 0.2 <= sum(bool(cyrillic.search(b)) for b in said) / len(said) <= 0.45
    for path in ("/", "/ideas", "/roadmap"):
        page = _ru(client, path)
        assert any(title in page for title in titles if cyrillic.search(title)), path
