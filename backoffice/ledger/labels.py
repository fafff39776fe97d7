"""Human labels of the 20 billing-event types (snake_case DOMAIN names → translated label)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

EVENT_LABELS = {
    "subscription_created": _l("Subscribed"),
    "subscription_renewed": _l("Renewed"),
    "subscription_upgraded": _l("Upgraded"),
    "subscription_downgrade_scheduled": _l("Downgrade scheduled"),
    "subscription_downgrade_cancelled": _l("Downgrade cancelled"),
    "subscription_downgraded": _l("Downgraded"),
    "subscription_cancelled": _l("Cancelled"),
    "subscription_reactivated": _l("Reactivated"),
    "subscription_expired": _l("Expired"),
    "subscription_immediately_cancelled": _l("Cancelled immediately"),
    "subscription_suspended": _l("Suspended"),
    "subscription_past_due": _l("Past due"),
    "payment_failed": _l("Payment failed"),
    "payment_recovered": _l("Payment recovered"),
    "payment_refunded": _l("Payment refunded"),
    "billing_info_added": _l("Billing info added"),
    "billing_info_updated": _l("Billing info updated"),
    "payment_method_updated": _l("Payment method updated"),
    "no_op": _l("No change"),
    "unclassified": _l("Unclassified"),
}


def event_label(event_type: str) -> str:
    label = EVENT_LABELS.get(event_type)
    return str(label) if label is not None else event_type
