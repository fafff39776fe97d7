"""factory_boy factories: test data inserted as rows, straight into the tables.

Each factory flushes into the app's session; tests call `db.session.commit()` when they are done
building. Money is Decimal, time aware UTC. Add factories for your feature's models here.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.invoicing.models import PlatformInvoice
from backoffice.ledger.models import BillingEvent, Plan, Subscription
from backoffice.users.models import Login, Membership, User, UserSession

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session
        sqlalchemy_session_persistence = "flush"


class AccountFactory(_Base):
    class Meta:
        model = Account

    id = factory.Sequence(lambda n: f"acc_{n:05d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    country = "CH"
    email = factory.LazyAttribute(lambda o: f"billing@{o.id}.example")
    created_at = NOW
    modified_at = factory.LazyAttribute(lambda o: o.created_at)


class PlanFactory(_Base):
    class Meta:
        model = Plan

    price_id = factory.Sequence(lambda n: f"price_{n}")
    plan_key = "pro"
    name = "Pro"
    monthly_amount = Decimal("100.00")
    interval = "month"
    currency = "EUR"


class SubscriptionFactory(_Base):
    class Meta:
        model = Subscription

    account_id = factory.LazyFunction(lambda: AccountFactory().id)
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_{n:06d}")
    is_current = True
    status = "active"
    plan = "pro"
    price_amount = Decimal("100.00")
    currency = "EUR"
    cancel_at_period_end = False
    scheduled_plan = None
    scheduled_price_amount = None
    subscribed_since = NOW
    drift_detected = False


class BillingEventFactory(_Base):
    """A ledger row. Pass `subscription=`; account, currency follow it."""

    class Meta:
        model = BillingEvent

    subscription = factory.SubFactory(SubscriptionFactory)
    subscription_id = factory.LazyAttribute(lambda o: o.subscription.id)
    account_id = factory.LazyAttribute(lambda o: o.subscription.account_id)
    stripe_event_id = factory.Sequence(lambda n: f"evt_{n:08d}")
    type = "subscription_created"
    from_plan = None
    to_plan = "pro"
    previous_amount = Decimal(0)
    new_amount = Decimal("100.00")
    amount_delta = factory.LazyAttribute(
        lambda o: None if o.new_amount is None or o.previous_amount is None else o.new_amount - o.previous_amount
    )
    committed_mrr = factory.LazyAttribute(lambda o: o.new_amount if o.new_amount is not None else Decimal(0))
    currency = "EUR"
    occurred_at = NOW

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.pop("subscription", None)
        return super()._create(model_class, *args, **kwargs)


class PaymentTransactionFactory(_Base):
    class Meta:
        model = PaymentTransaction

    account_id = factory.LazyFunction(lambda: AccountFactory().id)
    stripe_invoice_id = factory.Sequence(lambda n: f"in_{n:08d}")
    status = "succeeded"
    date = NOW
    currency = "EUR"
    amount_excluding_tax = Decimal("100.00")
    tax_amount = factory.LazyAttribute(lambda o: (o.amount_excluding_tax * Decimal("0.081")).quantize(Decimal("0.01")))
    amount = factory.LazyAttribute(lambda o: o.amount_excluding_tax + o.tax_amount)
    invoice_total = factory.LazyAttribute(lambda o: o.amount)
    amount_from_credit = Decimal(0)


class PlatformInvoiceFactory(_Base):
    """One of Backoffice's own invoices, a draft without lines (the month-end run makes real ones)."""

    class Meta:
        model = PlatformInvoice

    account_id = factory.LazyFunction(lambda: AccountFactory().id)
    period = "2026-11"
    currency = "CHF"
    subtotal = Decimal("100.00")
    tax = Decimal("8.10")
    total = Decimal("108.10")
    vat_rate = Decimal("8.1")
    vat_reason = "domestic"
    seller_country = "CH"
    customer_name = factory.LazyAttribute(lambda o: o.account_id)
    customer_country = "CH"


class UserFactory(_Base):
    class Meta:
        model = User

    id = factory.Sequence(lambda n: f"usr_{n:05d}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"User{n}")
    created_at = NOW


class MembershipFactory(_Base):
    class Meta:
        model = Membership

    user_id = factory.LazyFunction(lambda: UserFactory().id)
    account_id = factory.LazyFunction(lambda: AccountFactory().id)
    role = "member"
    state = "active"
    created_at = NOW


class LoginFactory(_Base):
    class Meta:
        model = Login

    user_id = factory.LazyFunction(lambda: UserFactory().id)
    at = NOW
    method = "password"
    outcome = "success"
    ip = "192.0.2.1"
    user_agent = "Mozilla/5.0"


class UserSessionFactory(_Base):
    class Meta:
        model = UserSession

    id = factory.Sequence(lambda n: f"ses_{n:06d}")
    user_id = factory.LazyFunction(lambda: UserFactory().id)
    created_at = NOW
    last_seen_at = NOW
    revoked_at = None
