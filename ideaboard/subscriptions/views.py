"""A member's mail settings, and the one-click unsubscribe link every notification mail has."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from ideaboard.extensions import csrf, db
from ideaboard.forms import apply_errors
from ideaboard.htmx import render
from ideaboard.security import no_referrer, no_store
from ideaboard.services import notification_mail as nm
from ideaboard.services.errors import ValidationError

from .forms import NotificationSettingsForm

bp = Blueprint("subscriptions", __name__)

LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def _page(form, status: int = 200):
    form.locale.choices = [
        SelectChoice(code, LANGUAGE_NAMES.get(code, code))
        for code in current_app.config["LANGUAGES"]
    ]
    return render(
        "subscriptions/settings.html",
        form=form,
        groups=nm.GROUPS,
        status=status,
    )


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def settings():
    """Choose, per group of kinds, mail right away, in a daily digest, or never."""
    no_store()
    form = NotificationSettingsForm()
    if form.validate_on_submit():
        choices = {g.name: getattr(form, g.name).data for g in nm.GROUPS}
        try:
            nm.set_preferences(current_user, choices, form.locale.data)
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
            return _page(form, status=422)
        db.session.commit()
        flash(_("Your email choices were saved."))
        return redirect(url_for("subscriptions.settings"), 303)
    if request.method == "GET":
        for name, delivery in nm.preferences_of(current_user).items():
            getattr(form, name).data = delivery
        form.locale.data = nm.chosen_mail_locale(current_user) or str(get_locale())
    return _page(form, status=200 if request.method == "GET" else 400)


@bp.url_value_preprocessor
def _private_token_page(endpoint: str | None, values: dict | None) -> None:
    # The token in the URL is a credential: never in a Referer header nor a shared cache.
    if endpoint == "subscriptions.unsubscribe":
        no_store()
        no_referrer()


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: the mail client posts it with no session; the token is the credential
def unsubscribe(token: str):
    """GET asks to confirm; POST (a button, or the mail client's one-click) turns it off."""
    try:
        user, scope = nm.read_unsubscribe_token(token)
    except nm.InvalidToken:
        return render("subscriptions/unsubscribe_invalid.html", status=400)
    what = nm.scope_label(scope)
    if request.method == "POST":
        nm.unsubscribe(user, scope)
        db.session.commit()
        return render("subscriptions/unsubscribed.html", what=what)
    return render("subscriptions/unsubscribe.html", what=what, token=token)
