"""Imports every feature's models so Flask-Migrate and the metadata see all tables."""
from backoffice import list_indexes  # noqa: F401  (indexes of the list pages)
from backoffice.accounts.models import Account
from backoffice.api.models import ApiToken
from backoffice.dashboard.models import LoginDaily, MrrDaily, RevenueDaily
from backoffice.invoices.models import PaymentTransaction
from backoffice.invoicing.models import AddonPrice, MeteredPrice, PlanAllowance, PlanPrice, VatSetting
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry, Operator
from backoffice.schedule import ScheduleState
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
    "ScheduleState",
    "StripeEvent",
    "Subscription",
    "SuspensionEvent",
    "UsageRecord",
    "User",
    "UserSession",
    "VatSetting",
]
