"""The Stripe event archive: the webhook's hot path (archive a verified event, map the customer
to an account) and the release of events that waited for their customer. The signature is
checked before, beside the webhook (stripe/signature.py); `check_envelope` is what the
archive accepts.

Nothing here classifies: the replay (ledger/replay.py) reads the archive later. A stored
row never changes except its processing columns (state, error, processed_at, account_id,
stripe_subscription_id); on PostgreSQL a trigger enforces that.

Customer → account (DOMAIN.md §2): an account already linked to the Stripe customer id keeps
it; else the account named by the customer's ``metadata.account_id`` (created with that id
when Backoffice has not seen it yet); else a new account with the id ``stripe:<customer id>``.
Names, e-mail and address come from the customer object.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from backoffice.accounts.filters import ID_RE
from backoffice.accounts.models import Account
from backoffice.dbtypes import UNSTORABLE_TEXT, utcnow
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.ledger import readers, sql
from backoffice.ledger.models import Discrepancy, StripeEvent
from backoffice.sentences import REDELIVERED_BODY_DIFFERS, say

log = logging.getLogger(__name__)

PAYLOAD_DIVERGENCE = "PayloadDivergence"

# Stripe event types the replayer reads: the classified ones (ledger rows) and those that only
# feed the projections (payment transactions, the plan catalog). Everything else is archived
# and marked ignored at once.
CLASSIFIED_TYPES = frozenset({
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.tax_id.created",
    "customer.tax_id.updated",
    "customer.tax_id.deleted",
    "payment_method.attached",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "subscription_schedule.created",
    "subscription_schedule.updated",
    "subscription_schedule.released",
    "subscription_schedule.canceled",
    "invoice.payment_succeeded",
    "invoice.paid",
    "invoice.payment_failed",
    "charge.refunded",
})
PROJECTION_TYPES = frozenset({
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "credit_note.created",
    "credit_note.updated",
    "credit_note.voided",
    "price.created",
    "price.updated",
    "plan.created",
    "plan.updated",
})
CATALOG_TYPES = frozenset({"price.created", "price.updated", "plan.created", "plan.updated"})
HANDLED_TYPES = CLASSIFIED_TYPES | PROJECTION_TYPES
# The event types a webhook endpoint must send Backoffice (`backoffice stripe connect` subscribes
# it to exactly these): one list, so the endpoint and the replayer never disagree.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(sorted(HANDLED_TYPES))


@dataclass(frozen=True)
class ArchiveResult:
    event_id: str
    outcome: str  # stored | duplicate | divergent
    account_id: str | None
    state: str

    @property
    def needs_replay(self) -> bool:
        return self.outcome == "stored" and self.state == "pending"


THIN_EVENT_OBJECT = "v2.core.event"


def not_the_platforms(event: dict) -> str | None:
    """Why an event is archived and ignored unread, or None: an event of a connected account
    (Stripe Connect names it in `account`) is not the platform's billing, and a thin event (a
    `v2` notification without the object) has nothing to read. Neither is refused: a 4xx makes
    Stripe retry for days and then disable the endpoint."""
    if event.get("object") == THIN_EVENT_OBJECT:
        return "thin (v2) event: archived, not read"
    account = event.get("account")
    if isinstance(account, str) and account:
        return "event of a connected account (Stripe Connect): archived, not read"
    return None


def check_envelope(event) -> dict:
    """A parsed body as an event envelope; 400 for anything that is not one."""
    if not isinstance(event, dict):
        raise BadRequest(_("The body is not a Stripe event."), field="body")
    if event.get("object") == THIN_EVENT_OBJECT:
        return _check_thin_envelope(event)
    for name in ("id", "type", "created"):
        if not event.get(name):
            raise BadRequest(_("The Stripe event has no %(name)s.", name=name), field=name)
    if not isinstance(event["id"], str) or len(event["id"]) > 255:
        raise BadRequest(_("The Stripe event id or type is invalid."), field="id")
    if not isinstance(event["type"], str):
        raise BadRequest(_("The Stripe event id or type is invalid."), field="type")
    if not isinstance(event["created"], int) or isinstance(event["created"], bool) or _created_at(event) is None:
        raise BadRequest(_("The Stripe event's created time is invalid."), field="created")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise BadRequest(_("The Stripe event has no data object."), field="data")
    # The ids the archive stores in columns of their own: no database text holds a NUL
    # character or a lone surrogate (dbtypes.UNSTORABLE_TEXT), and no Stripe id has one.
    for field, value in (("id", event["id"]), ("type", event["type"]), ("api_version", event.get("api_version")),
                         ("data.object.customer", event_customer_id(event)),
                         ("data.object.subscription", event_subscription_id(event))):
        if isinstance(value, str) and UNSTORABLE_TEXT.search(value):
            raise BadRequest(_("The Stripe event's %(name)s contains a NUL character or a lone surrogate.",
                               name=field), field=field)
    return event


def _check_thin_envelope(event: dict) -> dict:
    """A thin event has an id, a type and an ISO 8601 `created`, and no data object."""
    if not isinstance(event.get("id"), str) or not event["id"] or len(event["id"]) > 255 \
            or "\x00" in event["id"]:
        raise BadRequest(_("The Stripe event id or type is invalid."), field="id")
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise BadRequest(_("The Stripe event id or type is invalid."), field="type")
    if _created_at(event) is None:
        raise BadRequest(_("The Stripe event's created time is invalid."), field="created")
    return event


def _created_at(event: dict) -> datetime | None:
    """Stripe's `created`: Unix seconds (v1), an ISO 8601 time (thin v2 events)."""
    created = event.get("created")
    try:
        if isinstance(created, int) and not isinstance(created, bool):
            return datetime.fromtimestamp(created, UTC)
        if isinstance(created, str):
            moment = datetime.fromisoformat(created)
            return moment.astimezone(UTC) if moment.tzinfo else None
    except (ValueError, OverflowError, OSError):
        return None
    return None


def event_customer_id(event: dict) -> str | None:
    if not_the_platforms(event):
        return None  # a connected account's customer is not one of the platform's accounts
    obj = event["data"]["object"]
    return _stored_id(obj.get("id") if obj.get("object") == "customer" else obj.get("customer"))


def event_subscription_id(event: dict) -> str | None:
    if not_the_platforms(event):
        return None
    obj = event["data"]["object"]
    kind = obj.get("object")
    if kind == "subscription":
        return _stored_id(obj.get("id"))
    if kind == "invoice":
        return _stored_id(readers.invoice_subscription(obj))
    candidate = obj.get("subscription")
    if candidate is None and kind == "subscription_schedule":
        candidate = obj.get("released_subscription")
    return _stored_id(candidate)


def _stored_id(value) -> str | None:
    """An id (or expanded object) as the archive's columns of ids hold it (String(255)); anything
    else is none: the payload keeps what was sent, and the replay finds it unreadable."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def archive_event(body: bytes, event: dict, *, recovery_source: str | None = None) -> ArchiveResult:
    """Stores one verified event (one commit). A redelivery stores nothing; a divergent body
    keeps the stored row and records a PayloadDivergence discrepancy.

    The hot path is one INSERT ... ON CONFLICT DO NOTHING that also looks the customer's
    account up (and, on PostgreSQL, releases the customer's waiting events in the same
    statement); the stored row is read back only on a conflict. A customer object may link or
    create its account (DOMAIN.md §2), so it takes the slower path. Called inside a unit of
    work of the session (a transaction or pending changes), the event is stored in it and
    commits it; else (the webhook) in a transaction of its own, without the ORM."""
    sha = hashlib.sha256(body).hexdigest()
    customer_id = event_customer_id(event)
    if customer_id and event["data"]["object"].get("object") == "customer" and event["type"].startswith("customer."):
        return _archive_customer_event(body, event, sha, customer_id, recovery_source)
    values = _row_values(body, event, sha, customer_id, recovery_source)
    params = {f"p_{name}": value for name, value in values.items()}
    dialect = db.engine.dialect.name
    if _session_busy():  # the caller's unit of work: the event commits with it, as ever
        stored = _insert(db.session, dialect, params, customer_id)
        if stored is not None:
            db.session.commit()
    else:
        # On PostgreSQL the INSERT is one statement (it releases the waiting events too), so it is
        # its own transaction: one round trip instead of BEGIN, INSERT, COMMIT.
        options = {"isolation_level": "AUTOCOMMIT"} if dialect == "postgresql" else {}
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            stored = _insert(conn, dialect, params, customer_id)
    if stored is None:  # redelivered (or a concurrent delivery of the same id won the insert)
        return _redelivered(event, sha, _stored(event["id"]))
    return ArchiveResult(event["id"], "stored", stored.account_id, values["state"])


def _session_busy() -> bool:
    """Whether the session holds a transaction or unflushed changes (a caller archiving inside
    its own unit of work). The webhook's requests start with no session at all."""
    if not db.session.registry.has():
        return False
    session = db.session()
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)


def _insert(conn, dialect: str, params: dict, customer_id: str | None):
    """The INSERT on the session or a connection, not committed: a row with the stored event's
    account id, or None when the id is stored already. SQLite releases the customer's waiting
    events in a second statement; on PostgreSQL the INSERT did."""
    stored = conn.execute(_insert_statement(dialect), params).first()
    if dialect != "postgresql" and stored is not None and stored.account_id and customer_id:
        conn.execute(_release_statement(), {"p_customer_id": customer_id, "p_account_id": stored.account_id})
    return stored


_INSERTED = ("id", "type", "api_version", "stripe_created_at", "received_at", "payload", "payload_sha256",
             "customer_id", "recovery_source", "recovered_at", "state", "processed_at", "error",
             "stripe_subscription_id")


@functools.cache
def _insert_statement(dialect: str):
    """INSERT ... ON CONFLICT (id) DO NOTHING RETURNING account_id, the account looked up from
    the customer in the same statement; on PostgreSQL the customer's waiting events are
    released in it too (a data-modifying CTE), found through `ix_stripe_events_unmapped` (the
    events of customers without an account; see migration 0015 for what reading every unmapped
    event cost). Built once: only the parameters change."""
    table = StripeEvent.__table__
    values = {name: db.bindparam(f"p_{name}", type_=table.c[name].type) for name in _INSERTED}
    values["account_id"] = (db.select(Account.id)
                            .where(Account.stripe_customer_id == db.bindparam("p_customer_id"))
                            .scalar_subquery())
    if dialect != "postgresql":
        return (sqlite_insert(table).values(values)
                .on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.account_id))
    insert = (pg_insert(table).values(values).on_conflict_do_nothing(index_elements=[table.c.id])
              .returning(table.c.account_id, table.c.customer_id).cte("inserted"))
    released = (db.update(table).values(account_id=insert.c.account_id)
                .where(table.c.customer_id == insert.c.customer_id,
                       table.c.customer_id == db.bindparam("p_customer_id"),
                       table.c.account_id.is_(None), insert.c.account_id.is_not(None))
                .cte("released"))
    return db.select(insert.c.account_id).add_cte(released)


@functools.cache
def _release_statement():
    table = StripeEvent.__table__
    return (db.update(table)
            .where(table.c.customer_id == db.bindparam("p_customer_id"), table.c.account_id.is_(None))
            .values(account_id=db.bindparam("p_account_id")))


def _row_values(body: bytes, event: dict, sha: str, customer_id: str | None,
                recovery_source: str | None, now: datetime | None = None) -> dict:
    """The one constructor of an archive row: every row is stored with these values (the
    account id aside, looked up from the customer or given by the caller)."""
    foreign = not_the_platforms(event)
    handled = event["type"] in HANDLED_TYPES and foreign is None
    now = now or utcnow()
    api_version = event.get("api_version")
    return {
        "id": event["id"],
        "type": event["type"][:100],  # the column's length; the payload keeps the whole
        # A label is read for its date (readers.api_version_date): its first 40 characters.
        "api_version": api_version[:40] if isinstance(api_version, str) else None,
        "stripe_created_at": _created_at(event),
        "received_at": now,
        "payload": body.decode("utf-8"),
        "payload_sha256": sha,
        "customer_id": customer_id,
        "recovery_source": recovery_source,
        "recovered_at": now if recovery_source else None,
        "state": "pending" if handled else "ignored",
        "processed_at": None if handled else now,
        "error": None if handled else (foreign or "unrecognised event type"),
        "stripe_subscription_id": event_subscription_id(event),
    }


def store_recovered(body: bytes, event: dict, *, source: str, account_id: str, customer_id: str,
                    now: datetime) -> bool:
    """An event the webhook did not deliver, stored as it would have stored it, for the account
    and customer the caller knows: one a sync recovered from Stripe's events list (`source`
    "events_list"), or a synthetic one of a baseline ("baseline"). In the caller's unit of work,
    not committed; answers whether it was stored (False: the id is archived already)."""
    values = _row_values(body, event, hashlib.sha256(body).hexdigest(), customer_id, source, now)
    table = StripeEvent.__table__
    stored = db.session.execute(sql.upsert(table).values(**values, account_id=account_id)
                                .on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id)).first()
    return stored is not None


def _stored(event_id: str):
    return db.session.execute(
        db.select(StripeEvent.payload_sha256, StripeEvent.account_id, StripeEvent.state)
        .where(StripeEvent.id == event_id)
    ).first()


def _archive_customer_event(body: bytes, event: dict, sha: str, customer_id: str,
                            recovery_source: str | None) -> ArchiveResult:
    """A customer object, in one transaction: the row is stored (with the customer's account
    when one is linked already), else the account is linked or created and the customer's
    waiting events, this one among them, are released to it. Two events of a new customer
    delivered at once may both create its account: the loser rolls back and finds the winner's
    account on its second attempt. Outside a caller's unit of work, on a connection of its own
    (each statement through the ORM session costs about twice the CPU)."""
    engine = db.engine
    dialect = engine.dialect.name
    busy = _session_busy()
    for attempt in (1, 2):
        values = _row_values(body, event, sha, customer_id, recovery_source)
        params = {f"p_{name}": value for name, value in values.items()}
        try:
            if busy:  # the caller's unit of work: the event commits with it, as ever
                stored, account_id = _store_customer_event(db.session, dialect, params, event)
                if stored:
                    db.session.commit()
            else:
                with engine.begin() as conn:
                    stored, account_id = _store_customer_event(conn, dialect, params, event)
        except IntegrityError:
            # A concurrent delivery of the same customer created its account (retried), or one
            # of the same id won the insert (answered as a redelivery).
            if busy:
                db.session.rollback()
            existing = _stored(event["id"])
            if existing is not None:
                break
            if attempt == 2:
                raise
            continue
        if not stored:  # redelivered (or a concurrent delivery of the same id won)
            existing = _stored(event["id"])
            break
        return ArchiveResult(event["id"], "stored", account_id, values["state"])
    return _redelivered(event, sha, existing)


def _store_customer_event(conn, dialect: str, params: dict, event: dict) -> tuple[bool, str | None]:
    """The INSERT, then the account and the release when no account is linked to the customer
    yet; not committed. (Whether it was stored, the account id.)"""
    customer = event["data"]["object"]
    stored = _insert(conn, dialect, params, customer["id"])
    if stored is None:
        return False, None
    if stored.account_id is not None:
        return True, stored.account_id
    account_id = _link_or_create_account(conn, customer)
    _release_waiting_events(conn, customer["id"], account_id)
    return True, account_id


def _redelivered(event: dict, sha: str, existing) -> ArchiveResult:
    if existing.payload_sha256 == sha or _says_the_same(event, existing):
        return ArchiveResult(event["id"], "duplicate", existing.account_id, existing.state)
    message = say(REDELIVERED_BODY_DIFFERS, event=event["id"], sha=sha, stored=existing.payload_sha256)
    already = db.session.execute(
        db.select(Discrepancy.id).where(
            Discrepancy.kind == PAYLOAD_DIVERGENCE,
            Discrepancy.stripe_event_id == event["id"],
            Discrepancy.message == message,
        )
    ).first()
    if already is None:
        account_id = existing.account_id or _account_id_of_customer(event_customer_id(event))
        db.session.add(Discrepancy(
            account_id=account_id, kind=PAYLOAD_DIVERGENCE, severity="warning",
            stripe_event_id=event["id"], message=message,
        ))
        db.session.commit()
    log.warning("stripe event %s: payload divergence", event["id"])
    return ArchiveResult(event["id"], "divergent", existing.account_id, existing.state)


def _says_the_same(event: dict, existing) -> bool:
    """A body of another API version (or the same one re-serialised) that says what the stored
    one says is a redelivery, not a divergence (readers.same_event)."""
    payload = db.session.execute(db.select(StripeEvent.payload).where(StripeEvent.id == event["id"])).scalar()
    try:
        stored = readers.parse_payload(payload)
    except (ValueError, TypeError):
        return False
    return isinstance(stored, dict) and readers.same_event(stored, event)


def _account_id_of_customer(customer_id: str | None) -> str | None:
    if not customer_id:
        return None
    return db.session.execute(
        db.select(Account.id).where(Account.stripe_customer_id == customer_id)
    ).scalar_one_or_none()


def _account_for_customer(customer: dict) -> str:
    """The account of a Stripe customer object, linked or created (DOMAIN.md §2)."""
    return _account_id_of_customer(customer["id"]) or _link_or_create_account(db.session, customer)


def _link_or_create_account(conn, customer: dict) -> str:
    """The account of a Stripe customer that no account is linked to: the one its metadata
    names (linked to it unless linked to another customer), else a new one. On the session or
    a connection: plain statements, no ORM objects."""
    customer_id = customer["id"]
    metadata = customer.get("metadata") or {}
    named = metadata.get("account_id") if isinstance(metadata, dict) else None
    wanted = account_text("id", named) or None
    if wanted is not None and (not ID_RE.match(wanted) or len(str(named)) > len(wanted)):
        wanted = None  # no account id at all (over 64 characters, spaces ...): cut, it would name another
    accounts = Account.__table__
    if wanted:
        # Selecting mapped attributes autoflushes a session: a pending account is found too.
        found = conn.execute(db.select(Account.id, Account.stripe_customer_id).where(Account.id == wanted)).first()
        if found is not None:
            if found.stripe_customer_id is None:
                conn.execute(db.update(accounts).where(accounts.c.id == found.id)
                             .values(stripe_customer_id=customer_id))
            return found.id
    account_id = wanted or stripe_account_id(customer_id)
    conn.execute(db.insert(accounts), {"id": account_id, "stripe_customer_id": customer_id,
                                              **_customer_details(customer)})
    return account_id


def stripe_account_id(customer_id: str) -> str:
    """The id of the account made for a Stripe customer no account names: `stripe:<customer id>`,
    or, for a customer id too long for that (never Stripe's own, which are short), `stripe:` and a
    digest of it: cut, two long ids that share their first 57 characters would be one account."""
    account_id = f"stripe:{customer_id}"
    if len(account_id) <= 64 and ID_RE.match(account_id):
        return account_id
    return "stripe:" + hashlib.sha256(customer_id.encode("utf-8", "surrogatepass")).hexdigest()[:48]


def account_text(column: str, value) -> str | None:
    """A customer's free text as the value of an accounts column: what is not text or an integer
    (None, an object or a list where Stripe sends a string) is None, NUL characters (which no database text column
    holds) are dropped, a lone surrogate (no UTF-8 for it) becomes "?", and it is cut to the
    column's length."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an integer has one exact text (a float, a list or an object has none)
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:Account.__table__.c[column].type.length]


def _country(address: dict) -> str | None:
    country = address.get("country")
    return account_text("country", country.upper()) if isinstance(country, str) and country else None


def _customer_details(customer: dict) -> dict:
    """A new account's columns from the Stripe customer object."""
    email = account_text("email", customer.get("email") or None) or None
    address = customer.get("address") if isinstance(customer.get("address"), dict) else {}
    country = _country(address)
    return {
        "name": (account_text("name", customer.get("name")) or account_text("name", customer.get("email"))
                 or account_text("name", customer["id"])),
        "email": email,
        "billing_name": account_text("billing_name", customer.get("name") or None) or None,
        "billing_email": email,
        **billing_address(address),
        "country": country,
    }


def billing_address(address) -> dict:
    """An accounts row's billing address columns from a Stripe customer's address (an address
    that is not an object is none)."""
    address = address if isinstance(address, dict) else {}
    return {
        "billing_line1": account_text("billing_line1", address.get("line1")),
        "billing_line2": account_text("billing_line2", address.get("line2")),
        "billing_postal_code": account_text("billing_postal_code", address.get("postal_code")),
        "billing_city": account_text("billing_city", address.get("city")),
        "billing_country": _country(address),
    }


def _release_waiting_events(conn, customer_id: str, account_id: str) -> int:
    """Events that arrived before their customer was known now belong to its account."""
    result = conn.execute(_release_statement(), {"p_customer_id": customer_id, "p_account_id": account_id})
    return result.rowcount or 0


def release_waiting_events(customer_id: str, account_id: str) -> int:
    """Where a customer becomes linked to an account (a sync, the platform's API): its events that
    waited now belong to the account, for its replay to take. In the caller's unit of work (not
    committed); answers how many were released."""
    db.session.flush()  # the account may be new in the session
    return _release_waiting_events(db.session, customer_id, account_id)


def attach_customer(customer: dict) -> str:
    """For a customer fetched from Stripe (a sync): links or creates its account and releases
    the events that waited for it. Returns the account id; the caller enqueues the replay."""
    account_id = _account_for_customer(customer)
    release_waiting_events(customer["id"], account_id)
    db.session.commit()
    return account_id


def release_resolvable_events() -> int:
    """Pending events archived without an account whose customer has one now: two webhooks of
    one customer archived at once (neither saw the other's uncommitted rows) would otherwise
    wait for ever. One bulk UPDATE (ix_stripe_events_unmapped); the caller commits. Answers how
    many events it released to their accounts."""
    account = (db.select(Account.id).where(Account.stripe_customer_id == StripeEvent.customer_id)
               .scalar_subquery())
    result = db.session.execute(
        db.update(StripeEvent)
        .where(StripeEvent.account_id.is_(None), StripeEvent.customer_id.is_not(None),
               StripeEvent.state == "pending",
               db.exists().where(Account.stripe_customer_id == StripeEvent.customer_id))
        .values(account_id=account).execution_options(synchronize_session=False))
    return result.rowcount or 0


def waiting_customer_ids(limit: int = 1000) -> list[str]:
    """Customers with events waiting for their account (for a sync to fetch)."""
    rows = db.session.execute(
        db.select(StripeEvent.customer_id)
        .where(StripeEvent.account_id.is_(None), StripeEvent.customer_id.is_not(None),
               StripeEvent.state == "pending")
        .group_by(StripeEvent.customer_id)
        .order_by(StripeEvent.customer_id)
        .limit(limit)
    ).scalars()
    return list(rows)
