"""Configuration from environment variables, with embedded defaults for a one-machine start.

Every variable read here is documented in the README (keep the two in step).
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def webhook_secrets(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """STRIPE_WEBHOOK_SECRET as the secrets it names: several, comma-separated, so a secret can
    roll (old and new both verify for a while) and several endpoints can share the URL. Empty
    entries are dropped; a tuple (the setting already parsed) is kept as it is."""
    if not value:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p and p.strip())


def _secret_key(instance_path: Path, production: bool) -> str:
    """SECRET_KEY from the environment; for local use generated once and kept in instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if production:
        raise RuntimeError("SECRET_KEY must be set when BACKOFFICE_ENV=production")
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def check_production(config: dict) -> None:
    """Refuses settings that are wrong for production: in-memory sign-in limits are per process,
    so with several gunicorn workers each would allow the full number of attempts."""
    if config.get("BACKOFFICE_ENV") != "production" or config.get("SINGLE_PROCESS"):
        return
    if str(config.get("RATELIMIT_STORAGE_URI", "")).startswith("memory://"):
        raise RuntimeError(
            "RATELIMIT_STORAGE_URI is memory:// in production: each worker process would count sign-in "
            "attempts on its own. Set RATELIMIT_STORAGE_URI=redis://... (shared by every process), or "
            "BACKOFFICE_SINGLE_PROCESS=true when exactly one process serves the app.")


def sqlite_path_from_cwd(url: str) -> str:
    """A relative SQLite path (`sqlite:///instance/demo.db`) made absolute against the current
    directory, as every other tool reads a relative path; Flask-SQLAlchemy would otherwise put it
    under the instance folder (instance/instance/demo.db)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    path, _, query = url[len("sqlite:///"):].partition("?")
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    return f"sqlite:///{Path(path).resolve()}" + (f"?{query}" if query else "")


DB_POOL_SIZE = 10  # connections kept per process: gunicorn's 8 gthread threads, the drain and the scheduler


def engine_options(database_url: str, env) -> dict:
    """SQLAlchemy's pool, sized so each of a process's threads keeps its connection: with the
    default 5, a gthread worker's threads beyond five opened and closed a connection per webhook
    (PostgreSQL intake median 339 events/s against 463 with a pool of 12, four paired runs; 502
    and 576 with this default of 10). An in-memory SQLite database has one connection (StaticPool):
    no size."""
    options = {"pool_pre_ping": True}  # a connection the server dropped is replaced on checkout
    url = make_url(database_url)
    if not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")):
        options["pool_size"] = int(env.get("BACKOFFICE_DB_POOL_SIZE", str(DB_POOL_SIZE)))
    return options


def load_config(instance_path: Path) -> dict:
    env = os.environ
    production = env.get("BACKOFFICE_ENV", "development").lower() == "production"
    instance_path.mkdir(parents=True, exist_ok=True)
    database_url = sqlite_path_from_cwd(env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'backoffice.db'}")
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://"):]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return {
        "BACKOFFICE_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance_path, production),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Operators' browser sessions: expire after a working day of inactivity.
        "PERMANENT_SESSION_LIFETIME": timedelta(
            minutes=int(env.get("BACKOFFICE_SESSION_MINUTES", "480"))
        ),
        "KIOSK_SESSION_DAYS": int(env.get("BACKOFFICE_KIOSK_SESSION_DAYS", "90")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_SIGN_IN": env.get("BACKOFFICE_SIGN_IN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_SIGN_IN_EMAIL": env.get("BACKOFFICE_SIGN_IN_EMAIL_RATE_LIMIT", "30 per hour"),
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (ProxyFix).
        "TRUSTED_PROXIES": int(env.get("BACKOFFICE_TRUSTED_PROXIES", "0")),
        # The operator's word that one process serves the app (in-memory rate limits suffice).
        "SINGLE_PROCESS": _bool(env.get("BACKOFFICE_SINGLE_PROCESS"), False),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "translations"),
        "LANGUAGES": {"en": "English", "de": "Deutsch"},
        "PLATFORM_CURRENCY": env.get("BACKOFFICE_CURRENCY", "EUR").upper(),
        "BILLING_ENABLED": _bool(env.get("BACKOFFICE_BILLING_ENABLED"), True),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": webhook_secrets(env.get("STRIPE_WEBHOOK_SECRET")),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", ""),
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL", ""),
        # Seconds an archived event waits before the replay classifies it (its siblings arrive).
        "REPLAY_SETTLE_SECONDS": float(env.get("REPLAY_SETTLE_SECONDS", "5")),
        # Without a broker each web process runs the schedules (backoffice/schedule.py) unless off.
        "SCHEDULER_ENABLED": _bool(env.get("BACKOFFICE_SCHEDULER"), True),
        "STRIPE_TIMEOUT": float(env.get("STRIPE_TIMEOUT", "10")),
        "STRIPE_MAX_RETRIES": int(env.get("STRIPE_MAX_RETRIES", "3")),
        "DRIFT_PARALLEL": int(env.get("DRIFT_PARALLEL", "4")),
        "DRIFT_TIMEOUT": int(env.get("DRIFT_TIMEOUT", "30")),
        "SMTP_URL": env.get("SMTP_URL", ""),
        # Strict-Transport-Security on HTTPS responses (backoffice/security.py); 0 turns it off.
        "SECURITY_HSTS_SECONDS": int(env.get("BACKOFFICE_HSTS_SECONDS", "31536000" if production else "0")),
        "MAX_CONTENT_LENGTH": 1024 * 1024,  # webhooks and API bodies: 1 MiB
    }
