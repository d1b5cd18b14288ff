"""Moderator tools (pin, lock, hide, move, retitle, bans), community settings and
moderators, and the audit log pages.

Views stay thin: parse, load (404), check the permission (403), one service call, commit
once, answer. With htmx a thread action answers the thread's header (root id `thread`,
its moderator controls in it) and a reply action the reply (root id `reply-<id>`); a
plain post goes back to the page (303). Destructive steps (hide, move, ban) are confirmed:
their form sits in a `<details>` disclosure (no JS needed) and on a GET page of its own.
Every page here holds a moderator's tokens or the log: never stored by a cache.
"""

from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from ideaboard import permissions
from ideaboard.community.views import _community, thread_url
from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import hx_redirect, is_htmx, render
from ideaboard.models import Community, Reply, Thread, User
from ideaboard.perf import pagecache as page_cache
from ideaboard.security import no_store
from ideaboard.services import audit_log, communities, moderation, promotion, threads
from ideaboard.services.errors import NotFound, ValidationError

from .forms import (
    BanForm,
    CommunityForm,
    IntentForm,
    LiftForm,
    ModeratorForm,
    MoveForm,
    ReasonForm,
    SettingsForm,
    TitleForm,
)

bp = Blueprint("moderation", __name__)


@bp.before_request
def _private():
    # Moderators' forms and tokens, bans and the log: never kept by any cache. (A visitor
    # only gets the redirect to sign in, cached like any other.)
    page_cache.uncached()
    if current_user.is_authenticated:
        no_store()


# --- loading -------------------------------------------------------------------------


def _moderated(slug: str) -> Community:
    community = _community(slug)
    if not permissions.can_moderate(current_user, community):
        abort(403)
    return community


def _thread(slug: str, thread_id: int) -> tuple[Community, Thread]:
    """The community and thread, for someone who moderates it (404, then 403)."""
    community = _community(slug)
    try:
        thread = threads.get_thread(community, thread_id, current_user)
    except NotFound:
        abort(404)
    if not permissions.can_moderate(current_user, community):
        abort(403)
    return community, thread


def _intent(*allowed: str) -> str:
    intent = request.form.get("intent")
    if intent not in allowed:
        abort(400)
    return intent


def _days_choices() -> list[tuple[str, str]]:
    choices = [("", _("Until lifted"))]
    choices += [(str(n), ngettext("%(num)d day", "%(num)d days", n)) for n in moderation.BAN_DAYS]
    return choices


def _move_choices(community: Community) -> list[tuple[str, str]]:
    return [(c.slug, c.name) for c in moderation.move_targets(current_user, community)]


# --- the thread's header and a reply, as fragments ------------------------------------


def _thread_head(community: Community, thread: Thread, status: int = 200, **forms):
    """The thread's header (root id `thread`) with its moderator controls."""
    move_form = forms.pop("move_form", None) or MoveForm(formdata=None)
    move_form.to.choices = _move_choices(community)
    return render(
        "community/_thread_head.html",
        status=status,
        community=community,
        thread=thread,
        following=threads.is_following(current_user, thread),
        became=promotion.idea_of(thread),
        move_form=move_form,
        hide_form=forms.pop("hide_form", None),
        title_form=forms.pop("title_form", None),
        open_tool=forms.pop("open_tool", None),
    )


def _reply_fragment(community: Community, thread: Thread, reply: Reply, status=200, form=None):
    quoted = {}
    if reply.quote_of_id:
        found = threads.find_reply(thread, reply.quote_of_id)
        if found is not None:
            quoted[found.id] = found
    return render(
        "community/_reply.html",
        status=status,
        community=community,
        thread=thread,
        reply=reply,
        replies=SimpleNamespace(quoted=quoted),
        reply_form=None,
        reply_hide_form=form,
    )


def _back(thread: Thread, community: Community, anchor: str = "thread"):
    return redirect(thread_url(thread, community) + f"#{anchor}", 303)


# --- pin, lock -----------------------------------------------------------------------


@bp.post("/c/<slug>/t/<int:thread_id>/pin")
@login_required
def pin(slug: str, thread_id: int):
    """Pin (intent=pin) or unpin (intent=unpin) a thread."""
    intent = _intent("pin", "unpin")
    community, thread = _thread(slug, thread_id)
    moderation.set_pinned(current_user, thread, community, intent == "pin")
    db.session.commit()
    if is_htmx():
        return _thread_head(community, thread)
    flash(_("Thread pinned.") if intent == "pin" else _("Thread unpinned."), "success")
    return _back(thread, community)


@bp.post("/c/<slug>/t/<int:thread_id>/lock")
@login_required
def lock(slug: str, thread_id: int):
    """Lock (intent=lock) or open (intent=unlock) a thread."""
    intent = _intent("lock", "unlock")
    community, thread = _thread(slug, thread_id)
    moderation.set_locked(current_user, thread, community, intent == "lock")
    db.session.commit()
    if is_htmx():
        return _thread_head(community, thread)
    flash(_("Thread locked.") if intent == "lock" else _("Thread open for replies."), "success")
    return _back(thread, community)


# --- hide, show --------------------------------------------------------------------------


@bp.route("/c/<slug>/t/<int:thread_id>/hide", methods=["GET", "POST"])
@login_required
def hide(slug: str, thread_id: int):
    """Hide a thread with a reason (intent=hide), or show it again (intent=unhide); the
    GET page asks for confirmation without JS."""
    community, thread = _thread(slug, thread_id)
    if request.method == "GET":
        form = ReasonForm(formdata=None)
        return render("moderation/confirm_hide.html", community=community, thread=thread, form=form)
    intent = _intent("hide", "unhide")
    form = ReasonForm()
    try:
        if intent == "hide":
            moderation.hide_thread(current_user, thread, community, form.reason.data or "")
        else:
            moderation.unhide_thread(current_user, thread, community, form.reason.data or "")
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        if is_htmx():
            return _thread_head(community, thread, 422, hide_form=form, open_tool="hide")
        return render(
            "moderation/confirm_hide.html",
            status=422,
            community=community,
            thread=thread,
            form=form,
        )
    db.session.commit()
    if is_htmx():
        return _thread_head(community, thread)
    flash(_("Thread hidden.") if intent == "hide" else _("Thread shown again."), "success")
    return _back(thread, community)


@bp.route("/c/<slug>/t/<int:thread_id>/r/<int:reply_id>/hide", methods=["GET", "POST"])
@login_required
def hide_reply(slug: str, thread_id: int, reply_id: int):
    """Hide a reply with a reason (intent=hide) or show it again (intent=unhide)."""
    community, thread = _thread(slug, thread_id)
    reply = threads.find_reply(thread, reply_id)
    if reply is None:
        abort(404)
    if request.method == "GET":
        form = ReasonForm(formdata=None)
        return render(
            "moderation/confirm_hide.html",
            community=community,
            thread=thread,
            reply=reply,
            form=form,
        )
    intent = _intent("hide", "unhide")
    form = ReasonForm()
    try:
        if intent == "hide":
            moderation.hide_reply(current_user, thread, reply, community, form.reason.data or "")
        else:
            moderation.unhide_reply(current_user, thread, reply, community, form.reason.data or "")
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        if is_htmx():
            return _reply_fragment(community, thread, reply, 422, form)
        return render(
            "moderation/confirm_hide.html",
            status=422,
            community=community,
            thread=thread,
            reply=reply,
            form=form,
        )
    db.session.commit()
    if is_htmx():
        return _reply_fragment(community, thread, reply)
    flash(_("Reply hidden.") if intent == "hide" else _("Reply shown again."), "success")
    return _back(thread, community, f"reply-{reply.id}")


# --- move, retitle -------------------------------------------------------------------------


@bp.route("/c/<slug>/t/<int:thread_id>/move", methods=["GET", "POST"])
@login_required
def move(slug: str, thread_id: int):
    """Move a thread to another community the moderator moderates; its old address
    redirects to the new one."""
    community, thread = _thread(slug, thread_id)
    form = MoveForm() if request.method == "POST" else MoveForm(formdata=None)
    form.to.choices = _move_choices(community)
    if request.method == "GET":
        return render("moderation/move.html", community=community, thread=thread, form=form)
    to = communities.get_by_slug(form.to.data or "")
    try:
        moved_to = moderation.move_thread(
            current_user, thread, community, to, form.reason.data or ""
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        if is_htmx():
            return _thread_head(community, thread, 422, move_form=form, open_tool="move")
        return render(
            "moderation/move.html", status=422, community=community, thread=thread, form=form
        )
    db.session.commit()
    flash(_("Thread moved to %(name)s.", name=moved_to.name), "success")
    return hx_redirect(thread_url(thread, moved_to))


@bp.route("/c/<slug>/t/<int:thread_id>/title", methods=["GET", "POST"])
@login_required
def title(slug: str, thread_id: int):
    """Change a thread's title."""
    community, thread = _thread(slug, thread_id)
    if request.method == "GET":
        form = TitleForm(formdata=None, data={"title": thread.title})
        return render("moderation/title.html", community=community, thread=thread, form=form)
    form = TitleForm()
    try:
        moderation.retitle_thread(current_user, thread, community, form.title.data or "")
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        if is_htmx():
            return _thread_head(community, thread, 422, title_form=form, open_tool="title")
        return render(
            "moderation/title.html", status=422, community=community, thread=thread, form=form
        )
    db.session.commit()
    if is_htmx():
        return _thread_head(community, thread)
    flash(_("Title changed."), "success")
    return _back(thread, community)


# --- bans -------------------------------------------------------------------------------


def _bans_page(community: Community, form: BanForm, status: int = 200):
    form.days.choices = _days_choices()
    return render(
        "moderation/bans.html",
        status=status,
        community=community,
        form=form,
        bans=moderation.list_bans(current_user, community),
        lift_form=LiftForm(formdata=None),
    )


@bp.route("/c/<slug>/bans", methods=["GET", "POST"])
@login_required
def bans(slug: str):
    """The community's bans, and banning a member (by exact name or email)."""
    community = _moderated(slug)
    if request.method == "GET":
        return _bans_page(community, BanForm(formdata=None))
    form = BanForm()
    try:
        expires = moderation.ban_expiry(form.days.data)
        member = moderation.find_member(form.member.data or "")
        moderation.ban_member(current_user, community, member, form.reason.data or "", expires)
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return _bans_page(community, form, 422)
    db.session.commit()
    flash(_("%(name)s is banned from posting here.", name=member.display_name), "success")
    return redirect(url_for("moderation.bans", slug=community.slug), 303)


@bp.post("/c/<slug>/bans/<int:ban_id>/lift")
@login_required
def lift(slug: str, ban_id: int):
    """Lift a ban."""
    community = _community(slug)
    ban = moderation.get_ban(community, ban_id)
    if ban is None:
        abort(404)
    if not permissions.can_moderate(current_user, community):
        abort(403)
    form = LiftForm()
    try:
        moderation.lift_ban(current_user, community, ban, form.reason.data or "")
    except ValidationError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("moderation.bans", slug=community.slug), 303)
    db.session.commit()
    flash(_("Ban lifted."), "success")
    return redirect(url_for("moderation.bans", slug=community.slug), 303)


# --- settings and moderators ---------------------------------------------------------------


def _settings_page(community: Community, form=None, mod_form=None, status: int = 200):
    if form is None:
        form = SettingsForm(formdata=None, obj=community)
    return render(
        "moderation/settings.html",
        status=status,
        community=community,
        form=form,
        mod_form=mod_form or ModeratorForm(formdata=None),
        remove_form=ModeratorForm(formdata=None),
        moderators=communities.moderators(community),
    )


def _managed(slug: str) -> Community:
    community = _community(slug)
    if not permissions.can_manage_community(current_user, community):
        abort(403)
    return community


@bp.route("/c/<slug>/settings", methods=["GET", "POST"])
@login_required
def settings(slug: str):
    """A community's name, description, rules, accent and approval setting, and its
    moderators: for its owner and admins."""
    community = _managed(slug)
    if request.method == "GET":
        return _settings_page(community)
    form = SettingsForm()
    try:
        communities.update_community(
            current_user,
            community,
            name=form.name.data or "",
            description=form.description.data or "",
            rules=form.rules.data or "",
            accent=form.accent.data or "",
            require_approval=bool(form.require_approval.data),
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return _settings_page(community, form=form, status=422)
    db.session.commit()
    flash(_("Community settings saved."), "success")
    return redirect(url_for("moderation.settings", slug=community.slug), 303)


@bp.post("/c/<slug>/moderators")
@login_required
def moderators(slug: str):
    """Appoint a moderator (intent=appoint, `member`: exact name or email) or remove one
    (intent=remove, `user`: their id)."""
    intent = _intent("appoint", "remove")
    community = _managed(slug)
    form = ModeratorForm()
    if intent == "appoint":
        try:
            member = moderation.find_member(form.member.data or "")
            if member is None:
                raise ValidationError({"member": _("No member has this exact name or email.")})
            communities.appoint_moderator(current_user, community, member)
        except ValidationError as err:
            db.session.rollback()
            apply_errors(form, err)
            # A member's error sits beside the member field.
            if "user" in form.errors:
                form.member.errors = list(form.member.errors) + list(form.user.errors)
            return _settings_page(community, mod_form=form, status=422)
        db.session.commit()
        flash(_("%(name)s now moderates this community.", name=member.display_name), "success")
    else:
        raw = form.user.data or ""
        person = None
        if raw.isdigit() and len(raw) < 11:
            person = db.session.get(User, int(raw))
        if person is None:
            abort(404)
        communities.remove_moderator(current_user, community, person)
        db.session.commit()
        flash(_("%(name)s no longer moderates this community.", name=person.display_name))
    return redirect(url_for("moderation.settings", slug=community.slug) + "#moderators", 303)


# --- the audit log ------------------------------------------------------------------------

ACTIONS = {
    "thread.pin": _l("pinned a thread"),
    "thread.unpin": _l("unpinned a thread"),
    "thread.lock": _l("locked a thread"),
    "thread.unlock": _l("opened a thread"),
    "thread.hide": _l("hid a thread"),
    "thread.unhide": _l("showed a thread again"),
    "reply.hide": _l("hid a reply"),
    "reply.unhide": _l("showed a reply again"),
    "thread.move": _l("moved a thread"),
    "thread.title": _l("changed a thread's title"),
    "member.ban": _l("banned a member"),
    "member.unban": _l("lifted a ban"),
    "community.create": _l("created a community"),
    "community.update": _l("changed a community's settings"),
    "community.owner": _l("changed a community's owner"),
    "community.archive": _l("archived a community"),
    "community.unarchive": _l("opened a community again"),
    "moderator.appoint": _l("appointed a moderator"),
    "moderator.remove": _l("removed a moderator"),
}


def _log_page(community: Community | None):
    scope = None
    if community is not None:
        scope = [community.id]
    filters = audit_log.parse_filters(request.args, current_user, community)
    if filters is None:
        abort(400)
    page = audit_log.page(current_user, scope, filters)
    return render(
        "moderation/log.html",
        community=community,
        page=page,
        filters=filters,
        actions=ACTIONS,
        choices=audit_log.community_choices(current_user) if community is None else [],
    )


@bp.get("/mod/log")
@login_required
def log():
    """Every moderation and staff action, newest first, with filters: staff and admins."""
    if not permissions.can_view_moderation(current_user):
        abort(403)
    return _log_page(None)


@bp.get("/c/<slug>/mod/log")
@login_required
def community_log(slug: str):
    """This community's log: for its moderators."""
    community = _moderated(slug)
    return _log_page(community)


# --- the admin area's communities --------------------------------------------------------


@bp.post("/admin/communities")
@login_required
def create():
    """Admins add a community (slug, name, description, owner)."""
    if not permissions.can_create_community(current_user):
        abort(403)
    form = CommunityForm()
    try:
        owner = None
        if (form.owner.data or "").strip():
            owner = moderation.find_member(form.owner.data)
            if owner is None:
                raise ValidationError({"owner": _("No member has this exact name or email.")})
        community = communities.create_community(
            current_user,
            form.slug.data or "",
            form.name.data or "",
            form.description.data or "",
            owner=owner,
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        from ideaboard.admin.forms import NewBoardForm
        from ideaboard.services import admin

        return render(
            "admin/index.html",
            status=422,
            overview=admin.site_overview(current_user),
            form=NewBoardForm(formdata=None),
            community_form=form,
            community_list=communities.directory(1, include_archived=True).communities,
        )
    db.session.commit()
    flash(_("Community created."), "success")
    return redirect(url_for("moderation.settings", slug=community.slug), 303)


@bp.post("/admin/communities/<slug>/archive")
@login_required
def archive(slug: str):
    """Archive a community (intent=archive: read-only) or open it again (unarchive)."""
    intent = _intent("archive", "unarchive")
    community = _community(slug)
    if not permissions.can_create_community(current_user):
        abort(403)
    IntentForm()
    communities.set_archived(current_user, community, intent == "archive")
    db.session.commit()
    flash(_("Community archived.") if intent == "archive" else _("Community open again."))
    return redirect(url_for("moderation.settings", slug=community.slug), 303)
