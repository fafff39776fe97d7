"""Imports every feature's models so Flask-Migrate and the metadata see all tables."""
from backoffice import list_indexes  # noqa: F401  (indexes of the list pages)
from backoffice.accounts.models import Account
from backoffice.api.models import ApiToken
from backoffice.dashboard.models import LoginDaily, MrrDaily, RevenueDaily
from backoffice.invoices.models import PaymentTransaction
from backoffice.invoicing.models import AddonPrice, MeteredPrice, PlanAllowance, PlanPrice, VatSetting
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry, Operator
from backoffice.stripe.models import JobRun
from backoffice.usage.models import (
    AddonEvent,
    BackfillRun,
    Deployment,
    PlanEvent,
    SuspensionEvent,
    UsageRecord,
)
from backoffice.users.models import Login, Membership, User, UserSession

__all__ = [
    "Account",
    "AddonEvent",
    "AddonPrice",
    "ApiToken",
    "AuditEntry",
    "BackfillRun",
    "BillingEvent",
    "Deployment",
    "Discrepancy",
    "JobRun",
    "Login",
    "LoginDaily",
    "Membership",
    "MeteredPrice",
    "MrrDaily",
    "Operator",
    "PaymentTransaction",
    "Plan",
    "PlanAllowance",
    "PlanEvent",
    "PlanPrice",
    "RevenueDaily",
    "StripeEvent",
    "Subscription",
    "SuspensionEvent",
    "UsageRecord",
    "User",
    "UserSession",
    "VatSetting",
]

# Foreign keys the models declare that PostgreSQL enforces with statement-level triggers
# instead (migration 0014: the replayer writes these rows in bulk, and a declarative foreign
# key checks every row with a query of its own). SQLite keeps them as declared.
STATEMENT_CHECKED_FOREIGN_KEYS = frozenset({
    "fk_billing_events_account_id_accounts",
    "fk_billing_events_subscription_id_subscriptions",
    "fk_payment_transactions_account_id_accounts",
    "fk_payment_transactions_subscription_id_subscriptions",
})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's comparison of models and database (`backoffice db check`, autogenerate): a
    foreign key of STATEMENT_CHECKED_FOREIGN_KEYS that the database does not have is not a
    difference (it is enforced by triggers there)."""
    return not (type_ == "foreign_key_constraint" and not reflected and compare_to is None
                and name in STATEMENT_CHECKED_FOREIGN_KEYS)
