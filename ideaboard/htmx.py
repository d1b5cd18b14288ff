"""Page or fragment: one place that decides how an htmx request is answered."""

from __future__ import annotations

from flask import Flask, Response, make_response, render_template, request, session


def is_htmx(req=None) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page).

    `req` defaults to the current request; the vote fast path passes its own, so both
    judge a request by this one rule.
    """
    headers = (request if req is None else req).headers
    return (
        headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    template_name: str, fragment: str | None = None, status: int = 200, **context
) -> Response:
    """Render the full page, or just `fragment` for htmx."""
    template = fragment if fragment and is_htmx() else template_name
    body = render_template(template, **context)
    if is_htmx() and session.get("_flashes"):
        # A fragment has no #flash region of its own: say what happened out of band.
        body += render_template("_flash_oob.html")
    return make_response(body, status)


def hx_redirect(url: str, status: int = 303) -> Response:
    """Redirect a plain request; tell htmx to navigate with HX-Redirect instead."""
    if is_htmx():
        resp = make_response("", 200)
        resp.headers["HX-Redirect"] = url
        return resp
    resp = make_response("", status)
    resp.headers["Location"] = url
    return resp


def here() -> str:
    """The current page's path and query, for "come back here" links (GET pages only)."""
    if request.method != "GET":
        return ""
    return request.full_path.rstrip("?")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["here"] = here

    @app.after_request
    def _vary(resp: Response) -> Response:
        resp.vary.add("HX-Request")
        return resp
