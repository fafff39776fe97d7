"""Imports every feature's models so Flask-Migrate and the metadata see all tables."""
from backoffice.accounts.models import Account
from backoffice.api.models import ApiToken
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Plan, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry, Operator
from backoffice.stripe_sync.models import Discrepancy
from backoffice.users.models import Login, Membership, User, UserSession

__all__ = [
    "Account",
    "ApiToken",
    "AuditEntry",
    "BillingEvent",
    "Discrepancy",
    "Login",
    "Membership",
    "Operator",
    "PaymentTransaction",
    "Plan",
    "StripeEvent",
    "Subscription",
    "User",
    "UserSession",
]
