"""Sign up, sign in, sign out; account settings, password change and password reset."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ideaboard import ratelimit
from ideaboard.extensions import db, limiter
from ideaboard.forms import apply_errors
from ideaboard.htmx import render
from ideaboard.seclog import security_event
from ideaboard.security import no_referrer, no_store, safe_next
from ideaboard.services import accounts, notification_mail, votes
from ideaboard.services.errors import ValidationError

from .forms import (
    AccountForm,
    EmptyForm,
    LoginForm,
    PasswordChangeForm,
    RegisterForm,
    ResetPasswordForm,
    ResetRequestForm,
)

bp = Blueprint("auth", __name__)


def _not_failed(resp) -> bool:
    """Only failed attempts (422) count: anything else gives its count back."""
    return resp.status_code != 422


def _account_key() -> str:
    return "login:" + accounts.email_key(request.form.get("email", ""))


def _reset_key() -> str:
    return "reset:" + accounts.email_key(request.form.get("email", ""))


def _user_key() -> str:
    return f"password-check:{ratelimit.actor_key()}"


def _password_check_limit():
    """Wrong current passwords on the account pages, counted per user (not successes)."""
    return ratelimit.limit(
        lambda: current_app.config["PASSWORD_CHECK_LIMIT"],
        key_func=_user_key,
        refund_when=_not_failed,
    )


def _had_remember_cookie() -> bool:
    return current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies


def _end_session() -> None:
    """Sign out this browser: session and remember-me cookie both go."""
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    # session.clear() also dropped Flask-Login's note to delete the remember-me cookie;
    # without it the cookie would sign the browser straight back in.
    session["_remember"] = "clear"


def _pending_vote(user, form) -> str | None:
    """Cast the vote the visitor clicked before signing in (the form's `vote` field), in
    the transaction the caller commits; the anchor of its row to come back to, if cast."""
    voted_on = votes.cast_pending_vote(user, form.vote.data)
    return None if voted_on is None else f"vote-{voted_on}"


def _vote_anchor(form) -> str | None:
    """The anchor of the row the `vote` field names, from the input alone (not from
    whether a vote was cast): registration answers alike for new and taken addresses."""
    idea = votes.pending_vote_idea(form.vote.data)
    return None if idea is None else f"vote-{idea.id}"


def _back(form, anchor: str | None) -> str:
    target = safe_next(form.next.data)
    if anchor:
        target = f"{target.split('#', 1)[0]}#{anchor}"
    return target


def _carry_vote(form) -> None:
    """Keep the vote a visitor clicked in the form (from the query on the first GET)."""
    form.vote.data = form.vote.data or request.args.get("vote", "")


def _form_page(template: str, form, status: int = 200):
    """The sign-in or registration page, saying which idea signing in will vote for."""
    pending = votes.pending_vote_idea(form.vote.data)
    return render(template, form=form, pending_vote=pending, status=status)


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
    """Sign up: the same answer whether or not the address already has an account.

    By default (REGISTER_CONFIRM_FIRST off, as the contract says) a new address is signed
    in at once, its pending vote cast, and a confirmation link mailed; a taken address
    gets the same redirect and message but is not signed in (its owner is mailed), so the
    only difference left is being signed in. With REGISTER_CONFIRM_FIRST on nobody is
    signed in here: both go to "check your inbox", and the new account signs in (and
    casts its pending vote) from its confirmation link.
    """
    no_store()
    form = RegisterForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    if form.validate_on_submit():
        confirm_first = bool(current_app.config["REGISTER_CONFIRM_FIRST"])
        try:
            user = accounts.sign_up(
                form.email.data or "",
                form.display_name.data or "",
                form.password.data or "",
                next_path=safe_next(form.next.data, default=""),
                vote=form.vote.data or "",
                confirm_first=confirm_first,
            )
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
        else:
            if user is not None:  # mail (notifications, digests) in the language signed up in
                notification_mail.remember_mail_locale(user, str(get_locale()))
            if confirm_first:
                db.session.commit()  # the mail is sent after the response, either way
                return redirect(url_for("auth.register_sent"), 303)
            # Signed in at once (the contract), unless the address was taken: then the
            # same redirect and the same words, but nobody is signed in.
            anchor = _vote_anchor(form)
            if user is not None:
                votes.cast_pending_vote(user, form.vote.data)
            db.session.commit()
            if user is not None:
                _start_session(user, remember=False)
            flash(
                _(
                    "We sent a link to %(email)s to confirm the address.",
                    email=(form.email.data or "").strip(),
                )
            )
            return redirect(_back(form, anchor), 303)
        return _form_page("auth/register.html", form, status=422)
    form.next.data = form.next.data or request.args.get("next", "")
    _carry_vote(form)
    return _form_page("auth/register.html", form)


@bp.route("/register/sent")
def register_sent():
    """Check your inbox: the page every sign-up lands on, whatever its address."""
    return render("auth/register_sent.html", hours=accounts.verify_ttl_hours())


@bp.route("/login", methods=["GET", "POST"])
@ratelimit.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], refund_when=_not_failed)
@ratelimit.limit(
    lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"],
    key_func=_account_key,
    refund_when=_not_failed,
)
def login():
    """Sign in with email and password."""
    no_store()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))  # already in: go on, as /register
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data or "", form.password.data or "")
        except accounts.AccountDisabled as err:
            form.form_errors.append(err.message)
            return _form_page("auth/login.html", form, status=422)
        if user is not None:
            anchor = _pending_vote(user, form)
            db.session.commit()  # the vote, and a rehashed password if its parameters changed
            _start_session(user, remember=bool(form.remember.data))
            return redirect(_back(form, anchor), 303)
        form.form_errors.append(_("Email or password is incorrect."))
        return _form_page("auth/login.html", form, status=422)
    form.next.data = form.next.data or request.args.get("next", "")
    _carry_vote(form)
    return _form_page("auth/login.html", form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out and forget the session."""
    security_event("logout", user_id=current_user.id)
    _end_session()
    return redirect(url_for("main.home"), 303)


# --- account settings ------------------------------------------------------------------


@bp.route("/account", methods=["GET", "POST"])
@login_required
@_password_check_limit()
def account():
    """Change the name others see, and the email (which needs the current password)."""
    no_store()
    form = AccountForm()
    if form.validate_on_submit():
        try:
            accounts.update_account(
                current_user,
                form.display_name.data or "",
                form.email.data or "",
                form.current_password.data or "",
            )
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
        else:
            db.session.commit()
            flash(_("Your account was saved."))
            return redirect(url_for("auth.account"), 303)
        form.current_password.data = ""
        return render("auth/account.html", form=form, status=422)
    if request.method == "GET":
        form.display_name.data = current_user.display_name
        form.email.data = current_user.email
    return render("auth/account.html", form=form)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@_password_check_limit()
def change_password():
    """Change the password; every other session and remember-me cookie is signed out."""
    no_store()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        remember = _had_remember_cookie()
        try:
            accounts.change_password(
                user, form.current_password.data or "", form.new_password.data or ""
            )
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
        else:
            db.session.commit()
            _start_session(user, remember=remember)  # this browser stays signed in, afresh
            flash(_("Your password was changed. Every other device was signed out."))
            return redirect(url_for("auth.account"), 303)
        return render("auth/password.html", form=form, status=422)
    return render("auth/password.html", form=form)


@bp.route("/account/sign-out-others", methods=["POST"])
@login_required
def sign_out_others():
    """Sign out every other session and remember-me cookie; this browser stays in."""
    user = current_user._get_current_object()
    remember = _had_remember_cookie()
    accounts.sign_out_everywhere(user)
    db.session.commit()
    _start_session(user, remember=remember)
    flash(_("Every other device was signed out."))
    return redirect(url_for("auth.account"), 303)


# --- password reset --------------------------------------------------------------------


def _minutes() -> int:
    return int(current_app.config["RESET_TOKEN_TTL"].total_seconds() // 60)


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RESET_LIMIT_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["RESET_LIMIT_ACCOUNT"], key_func=_reset_key, methods=["POST"]
)
def reset_request():
    """Ask for a reset link: the same answer whether or not the address has an account."""
    no_store()
    form = ResetRequestForm()
    if form.validate_on_submit():
        try:
            accounts.request_password_reset(form.email.data or "")
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
            return render("auth/reset_request.html", form=form, status=422)
        db.session.commit()  # the mail is made and sent after the response
        return render("auth/reset_request.html", form=None, sent=True, minutes=_minutes())
    return render("auth/reset_request.html", form=form)


@bp.url_value_preprocessor
def _private_reset_page(endpoint: str | None, values: dict | None) -> None:
    # Before any check that may answer instead of the view (CSRF, rate limits), so error
    # pages at this URL are private too: the token in it must never travel in a Referer
    # header nor sit in a cache.
    if endpoint in ("auth.reset_password", "auth.verify_email"):
        no_store()
        no_referrer()


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Choose a new password with the emailed link; then sign in (never automatically)."""
    if accounts.find_reset_token(token) is None:
        if request.method == "POST":
            security_event("password_reset.invalid_token", user_id=None)
        return render("auth/reset_invalid.html", minutes=_minutes(), status=400)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data or "")
        except accounts.InvalidToken:
            db.session.rollback()
            return render("auth/reset_invalid.html", minutes=_minutes(), status=400)
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
            return render("auth/reset_password.html", form=form, token=token, status=422)
        db.session.commit()
        _end_session()
        flash(_("Your password was changed. Sign in with the new one."))
        return redirect(url_for("auth.login"), 303)
    return render("auth/reset_password.html", form=form, token=token)


# --- email verification ----------------------------------------------------------------


def _verify_refused(err: accounts.VerifyLinkRefused):
    return render(
        "auth/verify_invalid.html",
        reason=err.reason,
        hours=accounts.verify_ttl_hours(),
        status=400,
    )


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """Confirm an email address with the emailed link: GET shows a button, POST confirms.

    Mail scanners open links to check them; a GET that used up the single-use link would
    leave the person a dead one. So only the button (a POST) confirms.
    """
    form = EmptyForm()
    next_path = safe_next(request.args.get("next"), default="")
    vote = request.args.get("vote", "")[:12] or None
    if request.method == "GET":
        try:
            accounts.check_verify_token(token)
        except accounts.VerifyLinkRefused as err:
            return _verify_refused(err)
        pending = votes.pending_vote_idea(vote) if vote else None
        return render(
            "auth/verify.html",
            form=form,
            token=token,
            next=next_path or None,
            vote=vote,
            pending_vote=pending,
        )
    if not form.validate_on_submit():
        return render(
            "auth/verify.html", form=form, token=token, next=next_path, vote=vote, status=400
        )
    try:
        user, activated = accounts.verify_email(token)
    except accounts.VerifyLinkRefused as err:
        db.session.rollback()
        return _verify_refused(err)
    if activated and not user.is_disabled:
        # The first confirmation finishes a sign-up that signed nobody in
        # (REGISTER_CONFIRM_FIRST): it signs in now and casts the vote clicked before.
        voted_on = votes.cast_pending_vote(user, request.args.get("vote"))
        db.session.commit()
        _start_session(user, remember=False)
        flash(_("Your address is confirmed. Welcome, %(name)s!", name=user.display_name))
        target = next_path or url_for("main.home")
        if voted_on is not None:
            target = f"{target.split('#', 1)[0]}#vote-{voted_on}"
        return redirect(target, 303)
    db.session.commit()
    flash(_("Your address %(email)s is confirmed.", email=user.email))
    if current_user.is_authenticated:
        return redirect(url_for("auth.account"), 303)
    return redirect(url_for("auth.login"), 303)


def _not_sent(resp) -> bool:
    return resp.status_code >= 400


@bp.route("/account/verify", methods=["POST"])
@login_required
@ratelimit.limit(
    lambda: current_app.config["VERIFY_RESEND_LIMIT"],
    key_func=ratelimit.actor_key,
    refund_when=_not_sent,
)
def resend_verification():
    """Mail the signed-in member a new confirmation link (older ones stop working)."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    if accounts.resend_verification(current_user._get_current_object()):
        db.session.commit()
        flash(
            _(
                "We have sent a new link to %(email)s. Earlier links no longer work.",
                email=current_user.email,
            )
        )
    else:
        flash(_("Your address is already confirmed."))
    return redirect(safe_next(request.form.get("next")), 303)
