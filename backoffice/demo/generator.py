"""The demo data set: accounts, users, memberships, logins and sessions over the last 18 months.

Reproducible: every account draws from its own `random.Random(f"{seed}:{index}")` and every date
is relative to a fixed `now` (today at 00:00 UTC), so the same seed on the same day gives the same
rows, whatever the batch size. Account creation times grow with the index (a platform that grows),
so an account only ever refers to accounts created before it.
"""
from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote

from sqlalchemy import insert

from backoffice.accounts.models import Account
from backoffice.demo import wordlists as words
from backoffice.demo.stripe_sim import CustomerProfile
from backoffice.extensions import db
from backoffice.users.models import Login, Membership, User, UserSession

MAX_ACCOUNTS = 50_000
HISTORY_DAYS = 548  # 18 months
SESSION_KEEP_DAYS = 60  # the platform prunes older sessions
MAX_LOGINS_PER_USER = 120
BATCH_ACCOUNTS = 500
INSERT_CHUNK = 5_000

_COUNTRIES = list(words.COUNTRY_WEIGHTS)
_COUNTRY_WEIGHTS = list(words.COUNTRY_WEIGHTS.values())
# Weekly sign-in rates of the four kinds of users (dormant, occasional, regular, daily).
_ACTIVITY = [(0.15, 0.05), (0.35, 0.25), (0.35, 0.6), (0.15, 2.0)]
_METHODS = ["password", "google", "email_code"]
_METHOD_WEIGHTS = [55, 30, 15]
_FAILURE_RATE = {"password": 0.10, "google": 0.01, "email_code": 0.04}



LOGO_COLOURS = ("#2f6fdb", "#0f8a6a", "#b4531f", "#7a3fb8", "#b8325a", "#3d7d2a", "#8a6d00", "#1f7f99")


def generated_logo(name: str) -> str:
    """A logo drawn from the name (its initials on a colour of its own), as a data: URL: the demo
    loads nothing from other hosts, and the Content-Security-Policy allows data: images."""
    initials = "".join(word[0] for word in name.split()[:2]).upper() or "?"
    colour = LOGO_COLOURS[zlib.crc32(name.encode()) % len(LOGO_COLOURS)]
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 40 40'><rect width='40' height='40' rx='8' "
           f"fill='{colour}'/><text x='20' y='26' font-family='sans-serif' font-size='16' font-weight='700' "
           f"text-anchor='middle' fill='#fff'>{escape(initials)}</text></svg>")
    return "data:image/svg+xml," + quote(svg)


def fixed_now() -> datetime:
    """Today at 00:00 UTC: realistic dates that stay reproducible for a whole day."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 42
    accounts: int = 300
    now: datetime = field(default_factory=fixed_now)

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=HISTORY_DAYS)


@dataclass
class Batch:
    accounts: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    memberships: list[dict] = field(default_factory=list)
    logins: list[dict] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    facts: list[CustomerProfile] = field(default_factory=list)


@dataclass
class Counts:
    accounts: int = 0
    users: int = 0
    memberships: int = 0
    logins: int = 0
    sessions: int = 0

    def add(self, batch: Batch) -> None:
        self.accounts += len(batch.accounts)
        self.users += len(batch.users)
        self.memberships += len(batch.memberships)
        self.logins += len(batch.logins)
        self.sessions += len(batch.sessions)


def _hex_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(64):016x}"


def _account_id(seed: int, index: int) -> str:
    return _hex_id(random.Random(f"{seed}:id:{index}"), "acc")


def _account_created(spec: DemoSpec, index: int, rng: random.Random) -> datetime:
    """Monotone in the index; denser towards today (the platform grows)."""
    q = (index + rng.random()) / spec.accounts
    fraction = q ** (1 / 1.6)
    return spec.start + timedelta(seconds=int(fraction * HISTORY_DAYS * 86400))


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + timedelta(seconds=rng.randint(0, int((end - start).total_seconds())))


def _vat_id(rng: random.Random, country: str) -> str | None:
    d = lambda n: "".join(str(rng.randint(0, 9)) for _ in range(n))
    formats = {
        "CH": lambda: f"CHE-{d(3)}.{d(3)}.{d(3)} MWST", "DE": lambda: "DE" + d(9),
        "AT": lambda: "ATU" + d(8), "FR": lambda: "FR" + d(11), "GB": lambda: "GB" + d(9),
        "DK": lambda: "DK" + d(8), "NL": lambda: "NL" + d(9) + "B01", "SE": lambda: "SE" + d(10) + "01",
        "IT": lambda: "IT" + d(11), "ES": lambda: "ESB" + d(8), "BE": lambda: "BE0" + d(9),
        "PL": lambda: "PL" + d(10), "NO": lambda: "NO" + d(9) + "MVA",
    }
    return formats[country]() if country in formats else None


def _ip(rng: random.Random, country: str) -> str:
    if country in words.IPV6_PREFIXES and rng.random() < 0.15:
        prefix = rng.choice(words.IPV6_PREFIXES[country])
        return f"{prefix}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    return (f"{rng.choice(words.IPV4_PREFIXES[country])}.{rng.randint(1, 254)}."
            f"{rng.randint(1, 254)}.{rng.randint(1, 254)}")


def _person(rng: random.Random, language: str, domain: str, taken: set[str]) -> tuple[str | None, str | None, str]:
    first: str | None = rng.choice(words.FIRST_NAMES[language])
    last: str | None = rng.choice(words.LAST_NAMES[language])
    roll = rng.random()
    if roll < 0.05:
        first = None
    elif roll < 0.10:
        last = None
    if first and last:
        pattern = rng.random()
        if pattern < 0.6:
            local = f"{words.slug(first)}.{words.slug(last)}"
        elif pattern < 0.85:
            local = f"{words.slug(first)[0]}{words.slug(last)}"
        else:
            local = words.slug(first)
    else:
        local = words.slug(first or last or "user")
    email = f"{local}@{domain}"
    n = 2
    while email in taken:
        email = f"{local}{n}@{domain}"
        n += 1
    taken.add(email)
    return first, last, email


def _account(spec: DemoSpec, index: int) -> tuple[dict, CustomerProfile, random.Random]:
    rng = random.Random(f"{spec.seed}:{index}")
    account_id = _account_id(spec.seed, index)
    created = _account_created(spec, index, rng)
    country = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
    language = words.LANGUAGE_OF[country]
    base = f"{rng.choice(words.COMPANY_FIRST)} {rng.choice(words.COMPANY_SECOND)}"
    name = f"{base} {rng.choice(words.LEGAL_FORMS[country])}"
    domain = f"{words.slug(base)}.example"
    city, postal_code = rng.choice(words.CITIES[country])
    street = rng.choice(words.STREETS[language])
    number = rng.randint(1, 180)
    line1 = f"{number} {street}" if language in words.NUMBER_FIRST else f"{street} {number}"
    roll = rng.random()
    line2 = "Suite 200" if roll < 0.05 else ("2. OG" if roll < 0.08 else None)
    has_billing = rng.random() < 0.85
    vat_id = _vat_id(rng, country) if has_billing and rng.random() < 0.45 else None
    pay_by = "invoice" if rng.random() < 0.12 else "card"
    deleted_at = None
    if rng.random() < 0.03 and (spec.now - created).days > 21:
        deleted_at = _between(rng, created + timedelta(days=14), spec.now - timedelta(hours=1))
    modified = deleted_at or _between(rng, created, spec.now - timedelta(minutes=5))
    email = f"{rng.choice(['hello', 'info', 'contact', 'team', 'office'])}@{domain}"
    billing_email = f"{rng.choice(['billing', 'accounts', 'finance', 'invoices'])}@{domain}"
    row = {
        "id": account_id,
        "name": name,
        "country": country,
        "logo_url": generated_logo(name) if rng.random() < 0.4 else None,
        "email": email,
        "created_at": created,
        "modified_at": modified,
        "deleted_at": deleted_at,
        "stripe_customer_id": None,  # set by the real pipeline when its customer arrives
        "billing_name": name if has_billing else None,
        "billing_email": billing_email if has_billing else None,
        "billing_line1": line1 if has_billing else None,
        "billing_line2": line2 if has_billing else None,
        "billing_postal_code": postal_code if has_billing else None,
        "billing_city": city if has_billing else None,
        "billing_country": country if has_billing else None,
        "vat_id": vat_id,
        "card_brand": None,
        "card_last4": None,
        "pay_by": pay_by,
        "auto_invoice": rng.random() < 0.95,
        "auto_reminders": rng.random() < 0.9,
        "payment_terms_days": rng.choice([10, 14, 30, 30, 60]) if pay_by == "invoice" else 30,
    }
    facts = CustomerProfile(
        id=account_id, name=name, email=email, country=country, created_at=created,
        deleted_at=deleted_at, billing_name=row["billing_name"], billing_email=row["billing_email"],
        line1=row["billing_line1"], line2=row["billing_line2"], postal_code=row["billing_postal_code"],
        city=row["billing_city"], vat_id=vat_id, language=language,
    )
    return row, facts, rng


def _logins_and_sessions(spec: DemoSpec, rng: random.Random, user_id: str, country: str,
                         since: datetime, until: datetime, batch: Batch) -> datetime | None:
    """A user's sign-ins (with failed attempts before some) and the sessions still kept."""
    weekly = rng.choices([r for _, r in _ACTIVITY], [w for w, _ in _ACTIVITY])[0]
    method = rng.choices(_METHODS, _METHOD_WEIGHTS)[0]
    desktop = rng.choice(words.DESKTOP_AGENTS)
    mobile = rng.choice(words.MOBILE_AGENTS) if rng.random() < 0.6 else None
    home_ip, mobile_ip = _ip(rng, country), _ip(rng, country)
    times: list[datetime] = []
    t = since + timedelta(minutes=rng.randint(1, 120))  # the first sign-in right after joining
    while t < until and len(times) < MAX_LOGINS_PER_USER:
        times.append(t)
        t += timedelta(seconds=int(rng.expovariate(weekly / (7 * 86400))) + 600)
    if len(times) == MAX_LOGINS_PER_USER:  # keep the recent ones of very active users
        times = times[-MAX_LOGINS_PER_USER:]
    last_seen = None
    session_cutoff = spec.now - timedelta(days=SESSION_KEEP_DAYS)
    for n, at in enumerate(times):
        used = method if rng.random() < 0.85 else rng.choice(_METHODS)
        on_mobile = mobile is not None and rng.random() < 0.35
        agent, ip = (mobile, mobile_ip) if on_mobile else (desktop, home_ip)
        if rng.random() < _FAILURE_RATE[used]:
            batch.logins.append({"user_id": user_id, "at": at - timedelta(seconds=rng.randint(20, 240)),
                                 "method": used, "outcome": "failure", "ip": ip, "user_agent": agent})
        batch.logins.append({"user_id": user_id, "at": at, "method": used, "outcome": "success",
                             "ip": ip, "user_agent": agent})
        next_at = times[n + 1] if n + 1 < len(times) else until
        seen = min(at + timedelta(seconds=int(rng.expovariate(1 / (6 * 3600)))), next_at, until)
        if n == len(times) - 1 and weekly >= 0.6 and rng.random() < 0.7:
            seen = max(seen, until - timedelta(seconds=rng.randint(60, 20 * 3600)))  # active today
        last_seen = seen
        if at >= session_cutoff:
            revoked = seen if rng.random() < 0.15 else None
            batch.sessions.append({"id": _hex_id(rng, "ses"), "user_id": user_id, "created_at": at,
                                   "last_seen_at": seen, "revoked_at": revoked, "ip": ip,
                                   "user_agent": agent})
    return last_seen


def generate_account(spec: DemoSpec, index: int, batch: Batch) -> None:
    """Appends one account with its users, memberships, sign-ins and sessions to `batch`."""
    row, facts, rng = _account(spec, index)
    batch.accounts.append(row)
    batch.facts.append(facts)
    created = row["created_at"]
    end = row["deleted_at"] or spec.now
    domain = row["email"].split("@", 1)[1]
    taken: set[str] = set()
    n_users = 2 + int(13 * rng.random() ** 3)
    for k in range(n_users):
        user_id = _hex_id(rng, "usr")
        first, last, email = _person(rng, facts.language, domain, taken)
        joined = created + timedelta(minutes=1) if k == 0 else _between(rng, created, end)
        pending = k > 0 and rng.random() < 0.08
        role = "owner" if k == 0 else ("admin" if rng.random() < 0.15 else "member")
        last_seen = None
        if not pending:
            last_seen = _logins_and_sessions(spec, rng, user_id, facts.country, joined, end, batch)
        batch.users.append({"id": user_id, "email": email, "first_name": first, "last_name": last,
                            "created_at": joined, "last_seen_at": last_seen})
        batch.memberships.append({"user_id": user_id, "account_id": row["id"], "role": role,
                                  "state": "pending" if pending else "active", "created_at": joined})
        if index > 0 and not pending and rng.random() < 0.02:  # a consultant in an older account
            other = rng.randrange(0, index)
            batch.memberships.append({"user_id": user_id, "account_id": _account_id(spec.seed, other),
                                      "role": "member", "state": "active",
                                      "created_at": _between(rng, joined, end)})


def generate(spec: DemoSpec, batch_accounts: int = BATCH_ACCOUNTS) -> Iterator[Batch]:
    for first in range(0, spec.accounts, batch_accounts):
        batch = Batch()
        for index in range(first, min(first + batch_accounts, spec.accounts)):
            generate_account(spec, index, batch)
        yield batch


def _insert(model, rows: list[dict]) -> None:
    for i in range(0, len(rows), INSERT_CHUNK):
        db.session.execute(insert(model), rows[i:i + INSERT_CHUNK])


def seed(spec: DemoSpec, on_batch: Callable[[int], None] | None = None) -> tuple[Counts, list[CustomerProfile]]:
    """Bulk-inserts the data set, one transaction per batch of accounts."""
    counts = Counts()
    facts: list[CustomerProfile] = []
    if db.engine.dialect.name == "sqlite":
        db.session.execute(db.text("PRAGMA synchronous = OFF"))
    for batch in generate(spec):
        _insert(Account, batch.accounts)
        _insert(User, batch.users)
        _insert(Membership, batch.memberships)
        _insert(Login, batch.logins)
        _insert(UserSession, batch.sessions)
        db.session.commit()
        counts.add(batch)
        facts.extend(batch.facts)
        if on_batch:
            on_batch(len(batch.accounts))
    return counts, facts
