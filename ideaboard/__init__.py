"""Ideaboard: a board where customers co-create a company's products."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

_ROOT = Path(__file__).resolve().parent


def _asset_dir(name: str) -> str:
    """templates/, static/ and migrations/ sit beside the package in a checkout, inside it
    when packaged."""
    beside = _ROOT.parent / name
    return str(beside if beside.is_dir() else _ROOT / name)


def _default_instance() -> str | None:
    """instance/ beside the checkout; for an installed wheel, Flask's own default."""
    checkout = _ROOT.parent
    return str(checkout / "instance") if (checkout / "templates").is_dir() else None


def create_app(config: dict | object | None = None) -> Flask:
    """Assemble the application: config, extensions, blueprints, handlers. No I/O."""
    from . import assets, cli, errors, htmx, i18n, mail, markup, ratelimit, seclog, security
    from .config import Config, load_secret_key
    from .database import configure_database, database_url, engine_options
    from .extensions import babel, csrf, db, limiter, login_manager, migrate
    from .notifications import wiring as notification_wiring
    from .perf import fastvote, livepoll, observe, pagecache, shared

    app = Flask(
        __name__,
        template_folder=_asset_dir("templates"),
        static_folder=_asset_dir("static"),
        instance_relative_config=True,
        instance_path=os.environ.get("IDEABOARD_INSTANCE") or _default_instance(),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(app.instance_path)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", database_url(app))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    )
    base_https = app.config["BASE_URL"].startswith("https://")
    app.config["SESSION_COOKIE_SECURE"] = base_https
    app.config["REMEMBER_COOKIE_SECURE"] = base_https
    app.config["PREFERRED_URL_SCHEME"] = "https" if base_https else "http"
    if app.config["REDIS_URL"] and not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config["RATELIMIT_HEADERS_ENABLED"] = True

    db.init_app(app)
    migrate.init_app(app, db, directory=_asset_dir("migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    ratelimit.init_app(app)  # counts given back before Flask-Limiter's headers
    babel.init_app(
        app,
        locale_selector=i18n.select_locale,
        default_translation_directories=str(_ROOT / "translations"),
    )
    configure_database(app)
    pagecache.init_app(app)
    observe.init_app(app)
    assets.init_app(app)
    security.init_app(app)
    htmx.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    cli.init_app(app)
    mail.init_app(app)
    notification_wiring.init_app(app)  # i13: fan-out after the response, and its command
    seclog.init_app(app)
    markup.init_app(app)
    shared.init_app(app)  # last: wraps globals the others added (csrf_token, here)

    from .admin.views import bp as admin_bp
    from .api.views import bp as api_bp
    from .auth.views import bp as auth_bp
    from .changelog.views import bp as changelog_bp
    from .community.views import bp as community_bp
    from .ideas.views import bp as ideas_bp
    from .main.views import bp as main_bp
    from .moderation.views import bp as moderation_bp
    from .notifications.views import bp as notifications_bp
    from .people.views import bp as people_bp
    from .reports.views import bp as reports_bp
    from .roadmap.views import bp as roadmap_bp
    from .subscriptions.views import bp as subscriptions_bp

    for bp in (main_bp, auth_bp, ideas_bp, roadmap_bp, api_bp, admin_bp):
        app.register_blueprint(bp)
    for bp in (changelog_bp, people_bp, notifications_bp):  # i13: the changelog, feeds and profiles
        app.register_blueprint(bp)
    app.register_blueprint(subscriptions_bp)  # i13: mail settings and one-click unsubscribe
    app.register_blueprint(community_bp)  # i14: fan-club communities
    app.register_blueprint(moderation_bp)  # i14: moderator tools, settings, audit log
    app.register_blueprint(reports_bp)  # i14: reports, moderation queues, held posts
    csrf.exempt(api_bp)  # read-only GET routes; no cookie-authenticated writes exist there

    # The WSGI stack, outermost first: each layer answers what it can and passes the rest
    # inward, to Flask last. Layers that answer without Flask tell perf.observe, so hooks
    # that must see every request subscribe there. Nothing else replaces app.wsgi_app.
    app.wsgi_app = wsgi_stack(
        app,
        security.proxy_fix,  # the client's address and scheme, from PROXY_HOPS proxies
        fastvote.VoteFastPath,  # an htmx vote click from a list, without a Flask request
        livepoll.LiveFastPath,  # a visitor's unchanged live poll: 304 without Flask
        pagecache.VisitorFastPath,  # a visitor's cached page, without a Flask request
    )
    return app


def wsgi_stack(app: Flask, *layers):
    """Flask's WSGI app wrapped in `layers`, the first outermost. A layer is called with
    (app, the app it wraps) and returns its WSGI app, or None to stay out."""
    inner = app.wsgi_app
    for layer in reversed(layers):
        inner = layer(app, inner) or inner
    return inner
