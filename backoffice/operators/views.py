from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, make_response, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.exceptions import TooManyRequests

from backoffice import hx
from backoffice.api import queries as token_queries
from backoffice.api import services as token_services
from backoffice.auth import KIOSK_COOKIE, admin_required
from backoffice.errors import BadRequest
from backoffice.extensions import limiter
from backoffice.operators import queries, services, throttle
from backoffice.operators.filters import AuditFilters
from backoffice.pagination import LIST_PAGE_SIZE, parse_int, parse_page

bp = Blueprint("operators", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    """A path of Backoffice only: no other host (browsers read `/\\host` as `//host`) and no control
    character (a CR or LF would split the Location header)."""
    if (target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc
            and "\\" not in target and target.isprintable()):
        return target
    return url_for("dashboard.index")


def _referrer_path() -> str | None:
    if not request.referrer:
        return None
    parts = urlsplit(request.referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.exempt  # failures are counted by operators/throttle.py, per address and per e-mail
def sign_in():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error = None
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        key, address = email.lower()[:254], request.remote_addr or ""
        if throttle.refused(key, address):
            raise TooManyRequests()
        op = services.authenticate(email, request.form.get("password") or "")
        if op is None:
            throttle.failed(key, address)
            error = _("Wrong e-mail or password.")
        else:
            session.clear()
            # A kiosk display stays signed in for KIOSK_SESSION_DAYS (a remember cookie outlives
            # the browser session and any server restart); everyone else gets the normal session.
            kiosk_days = timedelta(days=current_app.config["KIOSK_SESSION_DAYS"])
            login_user(op, remember=op.kiosk, duration=kiosk_days if op.kiosk else None)
            session.permanent = True
            return redirect(_safe_next(request.form.get("next")))
    status = 401 if error else 200
    return hx.render("operators/sign_in.html", error=error, email=email,
                     next=request.values.get("next", "")), status


@bp.post("/sign-out")
def sign_out():
    # Revoke on the server, not only in this cookie: a request still in flight could otherwise
    # write the signed-in session cookie back after this response.
    services.end_sessions(current_user)
    logout_user()
    session.clear()
    flash(_("You have been signed out."), "info")
    return _forget_kiosk(hx.redirect_response(url_for("operators.sign_in")))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    op = services.find_invite(token)
    error = None
    if request.method == "POST":
        if request.form.get("password") != request.form.get("password_confirm"):
            error = _("The two passwords differ.")
        else:
            try:
                op = services.accept_invite(token, request.form.get("password") or "")
            except BadRequest as e:
                error = e.message
            else:
                login_user(op)
                flash(_("Welcome to Backoffice."), "success")
                return redirect(url_for("dashboard.index"))
    return hx.render("operators/accept_invite.html", op=op, error=error), (422 if error else 200)


@bp.get("/operators")
@admin_required
def index():
    page = parse_int(request.args, "page", 1)
    return hx.render("operators/index.html", "operator_table", ops=queries.operators_page(page),
                     invite_link=session.pop("invite_link", None), invite_error=None, invite_email="",
                     invite_role="viewer")


@bp.post("/operators/invite")
@admin_required
def invite():
    email = request.form.get("email", "")
    role = request.form.get("role", "viewer")
    try:
        op, token = services.invite(email, role, current_user)
    except BadRequest as e:
        page = queries.operators_page(1)
        return hx.render("operators/index.html", "invite_form", ops=page, invite_error=e.message,
                         invite_email=email, invite_role=role), 422
    link = url_for("operators.accept_invite", token=token, _external=True)
    current_app.logger.info("Invitation for %s: %s", op.email, link)  # e-mail is printed to the log
    session["invite_link"] = {"email": op.email, "link": link}
    flash(_("Invitation created for %(email)s.", email=op.email), "success")
    return hx.redirect_response(url_for("operators.index"))


@bp.post("/operators/<int:operator_id>/role")
@admin_required
def change_role(operator_id: int):
    op = services.change_role(operator_id, request.form.get("role", ""), current_user)
    flash(_("%(email)s is now %(role)s.", email=op.email, role=op.role), "success")
    return hx.redirect_response(url_for("operators.index"))


@bp.post("/operators/<int:operator_id>/active")
@admin_required
def set_active(operator_id: int):
    active = request.form.get("active") == "1"
    op = services.set_active(operator_id, active, current_user)
    if active:
        flash(_("%(email)s can sign in again.", email=op.email), "success")
    else:
        flash(_("%(email)s has been deactivated and signed out.", email=op.email), "success")
    return hx.redirect_response(url_for("operators.index"))


@bp.get("/operators/audit")
@admin_required
def audit():
    f = AuditFilters.from_args(request.args)
    return hx.render("operators/audit.html", "audit_table", f=f, entries=queries.audit_page(f),
                     actions=queries.audit_actions())


TOKENS = "operators/tokens.html"
NO_TOKEN_VALUES = {"name": "", "scope": "read", "account": ""}


@bp.get("/operators/tokens")
@admin_required
def tokens():
    """The API tokens (never their secrets) and the form that creates one."""
    page, page_size = parse_page(request.args)
    return hx.render(TOKENS, "token_table", tokens=token_queries.tokens_page(page, page_size), created=None,
                     error=None, values=NO_TOKEN_VALUES)


@bp.post("/operators/tokens")
@admin_required
def create_token():
    """The new token's secret is in this answer and nowhere else: not in a redirect's session, not
    in the browser's caches (no-store; the page's block keeps itself out of htmx's history)."""
    values = {key: request.form.get(key, "").strip() for key in NO_TOKEN_VALUES}
    try:
        # An account id beside another scope is refused, not dropped: the admin meant a narrower token.
        token, secret = token_services.create_token(values["name"], values["scope"], values["account"],
                                                    current_user)
    except BadRequest as e:
        return hx.render(TOKENS, "tokens", tokens=token_queries.tokens_page(1, LIST_PAGE_SIZE), created=None,
                         error=e, values=values), 422
    response = make_response(hx.render(TOKENS, "tokens", tokens=token_queries.tokens_page(1, LIST_PAGE_SIZE),
                                       created={"token": token, "secret": secret}, error=None,
                                       values=NO_TOKEN_VALUES), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/operators/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
@admin_required
def revoke_token(token_id: int):
    """GET: the confirmation dialog (a page without htmx). POST: revoke."""
    if request.method == "GET":
        return hx.render("operators/revoke_token.html", "revoke_confirm", token=token_queries.get_token(token_id))
    token = token_services.revoke_token(token_id, current_user)
    flash(_("The token %(name)s is revoked: calls with it are refused from now on.", name=token.name), "success")
    return hx.redirect_response(url_for("operators.tokens"))


@bp.post("/operators/me/locale")
def set_locale():
    locale = request.form.get("locale", "")
    services.set_locale(current_user, locale, current_app.config["LANGUAGES"])
    session["locale"] = locale
    return hx.redirect_response(_safe_next(request.form.get("next") or _referrer_path()))


@bp.post("/operators/me/kiosk")
def toggle_kiosk():
    """Kiosk mode on or off for this browser (its own cookie, see auth.KIOSK_COOKIE)."""
    kiosk = request.cookies.get(KIOSK_COOKIE) != "1"
    response = hx.redirect_response(url_for("dashboard.index", kiosk=1) if kiosk else url_for("dashboard.index"))
    if kiosk:
        response.set_cookie(KIOSK_COOKIE, "1", max_age=current_app.permanent_session_lifetime, **_kiosk_cookie())
    else:
        _forget_kiosk(response)
    return response


def _forget_kiosk(response):
    response.delete_cookie(KIOSK_COOKIE, **_kiosk_cookie())
    return response


def _kiosk_cookie() -> dict:
    """The kiosk cookie's attributes: the session cookie's (SESSION_COOKIE_* settings)."""
    app, interface = current_app._get_current_object(), current_app.session_interface
    return {"domain": interface.get_cookie_domain(app), "path": interface.get_cookie_path(app),
            "secure": interface.get_cookie_secure(app), "httponly": interface.get_cookie_httponly(app),
            "samesite": interface.get_cookie_samesite(app)}
