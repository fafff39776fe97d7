"""The app factory: the configuration, the extensions, every feature's blueprint and commands."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from backoffice import auth, errors, hx, i18n, jobs, models, schedule, security  # noqa: F401  (models: metadata)
from backoffice import extensions as ext
from backoffice.accounts.views import bp as accounts_bp
from backoffice.api.blueprints import PARTS as api_parts
from backoffice.api.blueprints import bp as api_bp
from backoffice.cli import register_app_commands
from backoffice.config import PROJECT_ROOT, check_production, engine_options, load_config, webhook_secrets
from backoffice.dashboard.views import bp as dashboard_bp
from backoffice.dbtypes import MAX_ID
from backoffice.invoices.views import bp as invoices_bp
from backoffice.invoicing.views import bp as invoicing_bp
from backoffice.ledger.views import bp as ledger_bp
from backoffice.legacy import bp as legacy_bp
from backoffice.operators.views import bp as operators_bp
from backoffice.search import sqlite_fts
from backoffice.search.views import bp as search_bp
from backoffice.stripe.views import bp as stripe_bp
from backoffice.stripe.webhook_fast import WebhookFastPath
from backoffice.usage.views import bp as usage_bp
from backoffice.users.views import bp as users_bp


class DatabaseInt(IntegerConverter):
    """`<int:...>` in every URL: an id an id column holds (dbtypes.MAX_ID); a larger number names
    no page (404) instead of overflowing the query (a 500)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """The app factory. `config` overrides what the environment gives (tests use it)."""
    instance_path = Path(os.environ.get("BACKOFFICE_INSTANCE_PATH") or PROJECT_ROOT / "instance")
    if config and config.get("INSTANCE_PATH"):
        instance_path = Path(config["INSTANCE_PATH"])
    app = Flask(
        "backoffice",
        instance_path=str(instance_path.resolve()),
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
    )
    app.url_map.converters["int"] = DatabaseInt
    app.config.update(load_config(instance_path))
    if config:
        app.config.update(config)
    # The pool suits the database finally chosen (an override may name an in-memory one).
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"], os.environ))
    check_production(app.config)
    if app.config.get("TRUSTED_PROXIES"):
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # Parsed once, whoever set it (the environment or an override): the webhook reads the tuple.
    app.config["STRIPE_WEBHOOK_SECRET"] = webhook_secrets(app.config.get("STRIPE_WEBHOOK_SECRET"))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    if os.environ.get("LOG_LEVEL", "INFO") != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ext.db.init_app(app)
    with app.app_context():
        for engine in ext.db.engines.values():
            ext.sqlite_pragmas(engine)
    ext.migrate.init_app(
        app,
        ext.db,
        directory=str(PROJECT_ROOT / "migrations"),
        render_as_batch=True,
        compare_type=True,
        include_object=sqlite_fts.include_object,
    )
    i18n.compile_catalogs_if_stale()
    ext.babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=lambda: "UTC")
    ext.csrf.init_app(app)
    ext.limiter.init_app(app)
    ext.htmx.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    hx.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    jobs.init_app(app)
    schedule.init_app(app)
    for bp in (
        operators_bp,
        dashboard_bp,
        accounts_bp,
        users_bp,
        ledger_bp,
        invoices_bp,
        usage_bp,
        invoicing_bp,
        search_bp,
        stripe_bp,
        api_bp,
        legacy_bp,
    ):
        app.register_blueprint(bp)
    ext.csrf.exempt(stripe_bp)
    for bp in (api_bp, *(part.bp for part in api_parts)):  # the token is the API's credential
        ext.csrf.exempt(bp)
    app.wsgi_app = WebhookFastPath(app, app.wsgi_app)  # Stripe's events without Flask's request
    register_app_commands(app)
    return app
