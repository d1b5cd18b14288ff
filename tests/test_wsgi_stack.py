"""The WSGI stack is assembled in one place, and every answer is observable (perf.observe).

The visitor page cache and the vote fast path answer before Flask builds a request, so a
feature that must see every request (view counts, audit, metrics) would miss them if it
hooked into Flask alone; perf.observe.request_answered is sent by every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

from werkzeug.middleware.proxy_fix import ProxyFix

from ideaboard.perf.fastvote import VoteFastPath
from ideaboard.perf.livepoll import LiveFastPath
from ideaboard.perf.observe import request_answered
from ideaboard.perf.pagecache import VisitorFastPath

from .conftest import ROOT, _reset
from .factories import make_idea, make_user
from .test_fastvote import sign_in, vote


def _layers(app) -> list:
    layers, current = [], app.wsgi_app
    while hasattr(current, "wsgi_app") or isinstance(current, ProxyFix):
        layers.append(type(current))
        current = current.app if isinstance(current, ProxyFix) else current.wsgi_app
    return layers + [current]


def test_the_stack_is_proxy_then_vote_fast_path_then_visitor_cache_then_flask(make_app):
    """Outermost first: ProxyFix, the vote fast path, the live poll's 304 (i13), the
    visitor cache, then Flask."""
    app = make_app(PROXY_HOPS=1)
    layers = _layers(app)
    assert layers[:4] == [ProxyFix, VoteFastPath, LiveFastPath, VisitorFastPath]
    # The innermost is Flask's own wsgi_app, bound to this app.
    assert getattr(layers[4], "__self__", None) is app
    assert layers[4].__func__ is type(app).wsgi_app
    assert _layers(make_app(PROXY_HOPS=0))[:3] == [VoteFastPath, LiveFastPath, VisitorFastPath]


def test_only_create_app_replaces_the_wsgi_app():
    """No module but create_app assigns app.wsgi_app: the stack has one visible place."""
    offenders = []
    for path in sorted((ROOT / "ideaboard").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "wsgi_app":
                    if not (isinstance(target.value, ast.Name) and target.value.id == "self"):
                        offenders.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}")
    assert offenders == ["ideaboard/__init__.py:" + offenders[0].split(":")[1]], offenders


def test_every_answer_is_observed_whichever_layer_gives_it(make_app):
    """Visitor cache hits, fast-path votes and Flask requests all reach one signal."""
    app = make_app(WTF_CSRF_ENABLED=True)
    _reset(app)
    seen = []

    def record(sender, answer, **_):
        assert sender is app
        seen.append(answer)

    request_answered.connect(record, app)
    try:
        with app.app_context():
            idea = make_idea()
            member = make_user()
            visitor = app.test_client()
            assert visitor.get("/ideas").status_code == 200  # rendered by Flask, then kept
            assert visitor.get("/ideas").status_code == 200  # served from the cache
            client, token = sign_in(app, member)
            seen.clear()
            assert vote(client, idea.id, token).status_code == 200  # the fast path
            resp = vote(client, idea.id, token, on_idea_page="1")  # the idea page: Flask
            assert resp.status_code == 200
            visitor.get("/ideas?sort=new")
            visitor.get("/ideas?sort=new")
    finally:
        request_answered.disconnect(record, app)
    summary = [(a.via, a.method, a.path, a.endpoint, a.status, a.user_id) for a in seen]
    assert summary == [
        ("vote-fast-path", "POST", f"/ideas/{idea.id}/vote", "ideas.vote", 200, member.id),
        ("flask", "POST", f"/ideas/{idea.id}/vote", "ideas.vote", 200, member.id),
        ("flask", "GET", "/ideas", "ideas.index", 200, None),
        ("visitor-cache", "GET", "/ideas", "ideas.index", 200, None),
    ]
    assert all(a.seconds >= 0 for a in seen)
