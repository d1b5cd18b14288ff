"""Shared renders: HTML rendered once and served to every viewer who would see the same.

A fragment shared between viewers (a page of comments, a list row, the vote fast path's
button) may show different controls to different people. What it shows of the viewer must
then be exactly what its cache key says, or one person's control (and CSRF token) reaches
another. So a shared fragment is rendered from a Viewer, not from the person:

- `ask(user, questions)` puts the permission questions the template asks (a predicate
  from permissions.py and its objects) to the real user, once; the Viewer it returns
  carries only those answers, and its `key` (the answers) goes into the cache key.
- `render()` renders a template with that Viewer as `current_user`. In templates the
  `can_*`/`is_*` predicates are Jinja globals that, given a Viewer, return its answer;
  a question it was not asked raises SharedRenderError, and so does reading anything off
  the Viewer (`current_user.id`), `request`, `session`, `g`, flashed messages, `here()`
  or any name a context processor adds that is not listed as safe (SAFE_CONTEXT).
  A template change that would make a shared fragment depend on anything its key does
  not name fails in every test that renders it, instead of leaking in production.
- `csrf_token()` inside a shared render gives TOKEN, a per-process random placeholder
  that content cannot spell (see TOKEN), and `personalise()` puts the request's own
  token in its place on the way out.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, current_app
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from werkzeug.local import LocalProxy

from ideaboard import permissions

#: What csrf_token() gives inside a shared render, replaced by personalise() before any
#: response is sent. No content can spell it: it holds a nonce drawn when the process
#: starts, and it is raw markup with a `<`, which autoescaping always changes in text (and
#: the sanitiser never lets through as a tag), so even a known nonce could not be typed.
TOKEN = Markup(f"<csrftoken {secrets.token_hex(16)}>")

_active: ContextVar[bool] = ContextVar("shared_render", default=False)


class SharedRenderError(RuntimeError):
    """A shared render asked about its viewer something its cache key does not include."""


def _ident(value: Any) -> Any:
    """How an object a question is about appears in a key: (kind, id) for a row."""
    if hasattr(value, "id"):
        return (type(value).__name__, value.id)
    return value


def question(predicate: Callable[..., bool], *objects: Any) -> tuple:
    """The key of "predicate(viewer, *objects)?"."""
    return (predicate.__name__, *map(_ident, objects))


class Viewer:
    """`current_user` inside a shared render: its answers to the questions it was asked,
    and nothing else (see the module doc)."""

    __slots__ = ("_answers", "key")

    def __init__(self, answers: dict[tuple, bool]) -> None:
        self._answers = answers
        self.key = tuple(answers.items())

    def answer(self, name: str, objects: tuple) -> bool:
        asked = (name, *map(_ident, objects))
        try:
            return self._answers[asked]
        except KeyError:
            raise SharedRenderError(
                f"a shared fragment asked {name}{asked[1:]} about its viewer, which its cache"
                " key does not include: add the question where the fragment is rendered"
            ) from None

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)  # Python's protocols (copy, pickle...) look these up
        raise SharedRenderError(
            f"a shared fragment read current_user.{name}: ask a permissions predicate instead"
        )

    def __repr__(self) -> str:
        return f"<Viewer {dict(self._answers)}>"


def _person(user: Any) -> Any:
    """The user behind current_user's proxy (each attribute read through it looks it up)."""
    return user._get_current_object() if isinstance(user, LocalProxy) else user


def ask(user: Any, questions: Iterable[tuple]) -> Viewer:
    """A Viewer holding `user`'s answers to `questions`, each (predicate, *objects)."""
    user = _person(user)
    return Viewer({question(q[0], *q[1:]): bool(q[0](user, *q[1:])) for q in questions})


class _Refused:
    """A name a shared render must not read: anything it does with it raises."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def _refuse(self, *_args, **_kwargs):
        raise SharedRenderError(
            f"a shared fragment used {self._name}, which differs between the viewers it is"
            " served to"
        )

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __call__ = __getitem__ = __iter__ = __bool__ = __str__ = __html__ = _refuse


#: Context-processor names a shared render may read: the same for every viewer it is
#: served to (the locale is in every shared key). Any other name a context processor adds
#: (request, session, g, the token helpers, anything added later) is refused there until
#: it is judged safe and listed here.
SAFE_CONTEXT = frozenset({"current_locale"})
#: Jinja globals that belong to one request, refused in shared renders (globals, so that
#: macros imported from Python, which see no context, are covered too).
PER_REQUEST_GLOBALS = ("request", "session", "g", "get_flashed_messages", "here", "csrf_meta_tag")


@contextmanager
def rendering():
    """Mark the code inside as a shared render (for macros called from Python)."""
    reset = _active.set(True)
    try:
        yield
    finally:
        _active.reset(reset)


def active() -> bool:
    return _active.get()


def render(template: str, viewer: Viewer, **context: Any) -> str:
    """`template` rendered for `viewer` (see the module doc); TOKEN stands for the token.

    Needs a request context, as render_template does; the context processors' names are
    refused unless listed in SAFE_CONTEXT.
    """
    app = current_app._get_current_object()
    processed: dict[str, Any] = {}
    app.update_template_context(processed)
    names = {
        name: value if name in SAFE_CONTEXT else _Refused(name) for name, value in processed.items()
    }
    with rendering():
        return app.jinja_env.get_template(template).render(
            {**names, "current_user": viewer, "csrf_token": _csrf_token, **context}
        )


def personalise(html: str) -> str:
    """A shared render's HTML with this request's CSRF token in place of TOKEN."""
    if TOKEN in html:
        html = html.replace(TOKEN, str(escape(generate_csrf())))
    return html


def _template_predicate(name: str, predicate: Callable[..., bool]) -> Callable[..., bool]:
    def in_template(user: Any, *objects: Any) -> bool:
        if type(user) is Viewer:
            return user.answer(name, objects)
        # The one definition, as it is now; the person, not the proxy.
        return getattr(permissions, name)(_person(user), *objects)

    in_template.__name__ = name
    in_template.__doc__ = predicate.__doc__
    return in_template


def _csrf_token() -> str:
    return TOKEN if _active.get() else generate_csrf()


def _guarded(name: str, value: Any) -> Any:
    """A global that behaves as `value`, except inside a shared render, where it refuses."""
    refused = _Refused(name)
    if isinstance(value, LocalProxy):
        # request, session, g: proxies, so resolved on each use.
        return LocalProxy(
            lambda: refused._refuse() if _active.get() else value._get_current_object()
        )

    def guarded(*args, **kwargs):
        if _active.get():
            refused._refuse()
        return value(*args, **kwargs)

    guarded.__name__ = name
    return guarded


def init_app(app: Flask) -> None:
    """Give templates the predicates, and make the per-request globals safe to share."""
    env = app.jinja_env
    for name, predicate in permissions.predicates().items():
        env.globals[name] = _template_predicate(name, predicate)
    env.globals["csrf_token"] = _csrf_token
    # About the idea, not the viewer: safe in a shared render (its status is in every key).
    env.globals["voting_closed"] = permissions.voting_closed
    for name in PER_REQUEST_GLOBALS:
        if name in env.globals:
            env.globals[name] = _guarded(name, env.globals[name])
