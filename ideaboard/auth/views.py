"""Sign up, sign in, sign out."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ideaboard.extensions import db, limiter
from ideaboard.forms import apply_errors
from ideaboard.htmx import is_htmx, render
from ideaboard.security import no_store, safe_next
from ideaboard.services import accounts
from ideaboard.services.errors import ValidationError

from .forms import LoginForm, RegisterForm

bp = Blueprint("auth", __name__)
log = logging.getLogger("ideaboard.security")


def _failed(resp) -> bool:
    return resp.status_code == 422


def _account_key() -> str:
    return "login:" + accounts.email_key(request.form.get("email", ""))


def sign_in_redirect():
    """Send an anonymous visitor to sign in, then back to where they were."""
    back = request.full_path if request.method == "GET" else _referrer_path()
    target = url_for("auth.login", next=safe_next(back, "/"))
    if is_htmx():
        resp = current_app.response_class("", 401)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


def _referrer_path() -> str:
    """The path of the page a form was posted from, if it was one of ours."""
    ref = request.referrer or ""
    host = request.host_url.rstrip("/")
    return ref[len(host) :] if ref.startswith(host + "/") else "/"


def _start_session(user, remember: bool) -> None:
    # A fresh session on every sign-in: nothing planted before it survives (fixation).
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(user, remember=remember)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_LIMIT"], methods=["POST"])
def register():
    """Create an account and sign in."""
    no_store()
    form = RegisterForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    if form.validate_on_submit():
        try:
            user = accounts.register_user(
                form.email.data, form.display_name.data, form.password.data or ""
            )
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
        else:
            db.session.commit()
            _start_session(user, remember=False)
            return redirect(safe_next(form.next.data), 303)
        return render("auth/register.html", form=form, status=422)
    form.next.data = form.next.data or request.args.get("next", "")
    return render("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], methods=["POST"], deduct_when=_failed)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
)
def login():
    """Sign in with email and password."""
    no_store()
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            db.session.commit()  # a rehashed password, if its parameters changed
            _start_session(user, remember=bool(form.remember.data))
            log.info("login ok user_id=%s ip=%s", user.id, request.remote_addr)
            return redirect(safe_next(form.next.data), 303)
        log.info("login failed ip=%s", request.remote_addr)
        form.form_errors.append(_("Email or password is incorrect."))
        return render("auth/login.html", form=form, status=422)
    form.next.data = form.next.data or request.args.get("next", "")
    return render("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out and forget the session."""
    logout_user()
    session.clear()
    return redirect(url_for("main.home"), 303)
