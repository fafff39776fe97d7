"""Sign-in throttling: failed attempts are counted per client address and per e-mail, separately,
in the rate limiter's storage (RATELIMIT_STORAGE_URI: memory, or Redis shared by every process).

- An address that failed `BACKOFFICE_SIGN_IN_RATE_LIMIT` times (default 10 per minute) is refused
  (429) until the window passes, whatever e-mail it tries: one client guessing many accounts.
- An e-mail that failed `BACKOFFICE_SIGN_IN_EMAIL_RATE_LIMIT` times (default 30 per hour), from
  anywhere, is refused to the addresses that took part in those failures: many clients guessing
  one account. Its owner, signing in from an address that did not fail, is not blocked by other
  people's failures; nor is anyone else when one attacker floods the form.
- Only failures count: a successful sign-in neither uses up an allowance nor is refused unless its
  own address failed too often.

The client address is the request's remote address; behind a reverse proxy set
BACKOFFICE_TRUSTED_PROXIES so it is the client's (X-Forwarded-For), not the proxy's.
"""
from __future__ import annotations

from flask import current_app
from limits import parse

from backoffice.extensions import limiter


def _limits():
    config = current_app.config
    return parse(config["RATELIMIT_SIGN_IN"]), parse(config["RATELIMIT_SIGN_IN_EMAIL"])


def refused(email: str, address: str) -> bool:
    """Whether this attempt is refused before the password is checked."""
    if not limiter.enabled:
        return False
    per_address, per_email = _limits()
    strategy = limiter.limiter
    if not strategy.test(per_address, "sign-in-address", address):
        return True
    if strategy.test(per_email, "sign-in-email", email):
        return False
    # The e-mail is under attack: refused to the addresses that failed on it in the window.
    stats = strategy.get_window_stats(per_email, "sign-in-email-address", email, address)
    return stats.remaining < per_email.amount


def failed(email: str, address: str) -> None:
    """Counts a failed attempt against the address, the e-mail, and the pair."""
    if not limiter.enabled:
        return
    per_address, per_email = _limits()
    strategy = limiter.limiter
    strategy.hit(per_address, "sign-in-address", address)
    strategy.hit(per_email, "sign-in-email", email)
    strategy.hit(per_email, "sign-in-email-address", email, address)
