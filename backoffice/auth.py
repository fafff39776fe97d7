"""Who may do what: sign-in on every page, admin role on every change, bearer tokens for the API."""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

from flask import Flask, abort, g, jsonify, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from backoffice import hx
from backoffice.api.models import ApiToken
from backoffice.dbtypes import utcnow
from backoffice.extensions import db, login_manager
from backoffice.operators.models import Operator

# Endpoints reachable without a signed-in operator. The API and the webhook authenticate
# on their own (bearer token, Stripe signature).
PUBLIC_ENDPOINTS = frozenset(
    {"static", "operators.sign_in", "operators.accept_invite", "stripe.webhook"}
)
# POSTs any signed-in operator may make about themselves (not changes to shared data).
SELF_SERVICE_ENDPOINTS = frozenset(
    {"operators.sign_out", "operators.set_locale", "operators.toggle_kiosk"}
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building its signer for a request that sends no
    session cookie (the webhook, the API): such a session starts empty either way."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = _SessionInterface()
    login_manager.init_app(app)
    login_manager.login_view = "operators.sign_in"
    login_manager.session_protection = "basic"

    @app.context_processor
    def _kiosk():
        return {"is_kiosk": is_kiosk}

    @login_manager.user_loader
    def _load(user_id: str):

        try:
            op_id, version = (int(x) for x in user_id.split(":", 1))
        except ValueError:
            return None
        op = db.session.get(Operator, op_id)
        if op is None or not op.active or op.session_version != version:
            return None
        return op

    @login_manager.unauthorized_handler
    def _unauthorized():
        if "api" in request.blueprints:
            return jsonify(error={"code": "unauthorized", "message": "Sign in or send a bearer token.", "field": None}), 401
        here = request.full_path if request.query_string else request.path  # full_path ends in "?" otherwise
        target = url_for("operators.sign_in", next=here if request.method == "GET" else None)
        return hx.redirect_response(target)

    @app.before_request
    def _require_sign_in():
        endpoint = request.endpoint
        if endpoint is None or endpoint in PUBLIC_ENDPOINTS or "api" in request.blueprints:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        session.permanent = True
        if (
            request.method not in ("GET", "HEAD", "OPTIONS")
            and endpoint not in SELF_SERVICE_ENDPOINTS
            and not current_user.is_admin
        ):
            abort(403)  # defence in depth: every change needs the admin role
        return None


# The kiosk toggle's own cookie, written only by the toggle and sign-out. In the session cookie
# it was lost whenever a request that started before the toggle (a dashboard card loading)
# answered after it: every answer writes the whole session cookie back, as it was when that
# request started.
KIOSK_COOKIE = "backoffice_kiosk"


def is_kiosk() -> bool:
    """Kiosk mode hides the navigation: the toggle (per browser), ?kiosk=1, or a kiosk operator."""
    if request.args.get("kiosk") == "1" or request.cookies.get(KIOSK_COOKIE) == "1":
        return True
    return bool(current_user.is_authenticated and current_user.kiosk)


def admin_required(view: Callable) -> Callable:
    """403 unless the signed-in operator is an admin (kiosk sessions never are)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def token_required(*scopes: str) -> Callable:
    """Bearer-token auth for /api/v1/: 401 without a valid token, 403 with the wrong scope.
    The `admin` scope may do everything. An endpoint that lists `account` accepts account-scoped
    tokens and confines itself to the token's account (api/answers.confine); every other endpoint
    refuses them. The scopes stay on the view for the OpenAPI document (api/openapi.py)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):

            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                return _api_error(401, "unauthorized", "A bearer token is required.")
            token = db.session.execute(
                db.select(ApiToken).where(ApiToken.token_hash == hash_secret(header[7:].strip()))
            ).scalar_one_or_none()
            if token is None or token.revoked_at is not None:
                return _api_error(401, "unauthorized", "The bearer token is unknown or revoked.")
            if token.scope == "account" and "account" not in scopes:
                return _api_error(403, "forbidden", "An account-scoped token reads only its own account, its "
                                  "billing events and its invoices.")
            if token.scope != "admin" and token.scope not in scopes:
                return _api_error(403, "forbidden", "This token's scope does not allow this call.")
            g.api_token = token
            now = utcnow()
            if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
                token.last_used_at = now
                db.session.commit()
            return view(*args, **kwargs)

        wrapper.token_scopes = ("admin", *(s for s in scopes if s != "admin"))
        return wrapper

    return decorator


def _api_error(status: int, code: str, message: str, field: str | None = None):
    return jsonify(error={"code": code, "message": message, "field": field}), status
