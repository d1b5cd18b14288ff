"""The route inventory (tests/routes.py) matches the URL map, so no route escapes its tests."""

from flask_limiter.util import get_qualified_name

from ideaboard.extensions import csrf, limiter

from .routes import (
    AUTHOR,
    FORMS,
    OWNER_OR_STAFF,
    ROUTES,
    STAFF,
    Route,
    expected,
)

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _url_map(app) -> dict[str, set[str]]:
    """Endpoint -> the methods its rules accept."""
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        found.setdefault(rule.endpoint, set()).update(rule.methods - IGNORED_METHODS)
    return found


def test_every_route_in_the_url_map_has_a_row(app):
    """A rule whose endpoint has no row in the inventory fails here, by name."""
    missing = sorted(set(_url_map(app)) - set(ROUTES))
    assert not missing, (
        f"routes missing from tests/routes.py ROUTES: {missing}. Classify each one (who may "
        "call it, its target and owner, rate limits, auth page) so the security tests cover it."
    )


def test_every_row_names_a_route_that_exists(app):
    """A row for an endpoint the app no longer has fails here, by name."""
    stale = sorted(set(ROUTES) - set(_url_map(app)))
    assert not stale, f"tests/routes.py ROUTES names endpoints that are gone: {stale}"


def test_methods_match_the_url_map(app):
    """Each row declares exactly the methods its rules accept."""
    wrong = {
        endpoint: (sorted(methods), sorted(ROUTES[endpoint].methods))
        for endpoint, methods in _url_map(app).items()
        if endpoint in ROUTES and methods != set(ROUTES[endpoint].methods)
    }
    assert not wrong, f"methods differ (URL map, table): {wrong}"


def test_every_post_route_has_a_valid_form():
    """The tests need realistic data for every route that accepts POST."""
    posts = {e for e, r in ROUTES.items() if "POST" in r.methods}
    assert posts == set(FORMS), (
        f"FORMS lacks {sorted(posts - set(FORMS))}, has stale {sorted(set(FORMS) - posts)}"
    )


def _limited_endpoints(app) -> set[str]:
    marked = limiter._marked_for_limiting  # the names Flask-Limiter's decorator recorded
    return {
        endpoint
        for endpoint, view in app.view_functions.items()
        if get_qualified_name(view) in marked
    }


def test_rate_limited_routes_are_the_ones_the_table_says(app):
    """Every rate-limited view is listed with its limits, and no row claims a missing one."""
    in_table = {e for e, r in ROUTES.items() if r.limits or r.write_limits}
    assert _limited_endpoints(app) == in_table
    for endpoint in in_table:
        for key in ROUTES[endpoint].limits + ROUTES[endpoint].write_limits:
            assert key in app.config, f"{endpoint}: no config key {key}"


def _csrf_exempt(app, endpoint: str) -> bool:
    blueprint = app.blueprints.get(endpoint.rpartition(".")[0])
    view = app.view_functions[endpoint]
    return (
        blueprint in csrf._exempt_blueprints
        or f"{view.__module__}.{view.__name__}" in csrf._exempt_views
    )


def test_csrf_exemptions_are_declared_and_explained(app):
    """A state-changing route without CSRF is marked csrf=False with its reason, and only then."""
    for endpoint, route in ROUTES.items():
        if not route.writes:
            continue
        assert _csrf_exempt(app, endpoint) == (not route.csrf), endpoint
        if not route.csrf:
            assert route.why, f"{endpoint}: say why it needs no CSRF token"


def test_owned_routes_name_their_target_and_owner():
    """Routes decided by ownership say what they point at and which column owns it."""
    for endpoint, route in ROUTES.items():
        if route.who in (OWNER_OR_STAFF, AUTHOR):
            assert route.target and route.owner, endpoint
        if route.owner:
            assert route.target, endpoint


def test_the_oracle_reads_as_intended():
    """Spot checks of the hand-written policy, so a typo in it cannot pass silently."""
    edit, vote, status = ROUTES["ideas.edit"], ROUTES["ideas.vote"], ROUTES["roadmap.change_status"]
    assert expected(edit, "a", owner="a") == "ok"
    assert expected(edit, "b", owner="a") == "forbidden"
    assert expected(edit, "mod", owner="a") == "forbidden"
    assert expected(edit, "staff", owner="b") == "ok"
    assert expected(edit, "anon") == "login"
    assert expected(edit, "a", owner="a", deleted=True) == "forbidden"  # sees it, may restore
    assert expected(edit, "b", owner="a", deleted=True) == "notfound"
    assert expected(edit, "staff", deleted=True) == "forbidden"
    assert expected(vote, "mod") == "ok"
    assert expected(status, "mod") == "forbidden" and status.who == STAFF
    assert expected(ROUTES["ideas.edit_comment"], "staff", owner="a") == "forbidden"
    assert expected(ROUTES["ideas.restore"], "a", owner="a") == "ok"  # the author who deleted it
    assert expected(ROUTES["ideas.restore"], "b", owner="a") == "notfound"
    assert expected(ROUTES["ideas.show"], "a", owner="a", deleted=True) == "ok"
    assert expected(ROUTES["ideas.show"], "b", owner="a", deleted=True) == "notfound"
    assert expected(ROUTES["ideas.restore"], "admin") == "ok"
    assert expected(ROUTES["api.show_idea"], "staff", deleted=True) == "notfound"
    assert isinstance(ROUTES["main.home"], Route)
