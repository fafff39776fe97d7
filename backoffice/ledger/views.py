"""The billing events page: the cross-account ledger with its pills, filters and CSV export."""
from __future__ import annotations

from flask import Blueprint, request
from flask_babel import gettext as _
from markupsafe import Markup, escape

from backoffice import exports, hx
from backoffice.accounts.queries import plan_catalog, plan_name
from backoffice.ledger import queries
from backoffice.ledger.filters import EVENT_TYPES, VIEW_LABELS, EventFilters
from backoffice.ledger.labels import event_label

bp = Blueprint("ledger", __name__, url_prefix="/ledger", template_folder="templates")

# A soft cancel keeps its plan until the period ends; the row reads "plan → Free".
TO_FREE = ("subscription_cancelled", "subscription_expired", "subscription_immediately_cancelled",
           "subscription_suspended")


def transition_text(event, catalog: dict) -> str:
    """The plan-transition cell as plain text ("" when the event changes no plan)."""
    from_plan, to_plan = event.from_plan, event.to_plan
    if event.type in TO_FREE and from_plan:
        to_plan = "free"
    if not from_plan and not to_plan:
        return ""
    if from_plan and to_plan and from_plan == to_plan:
        return plan_name(catalog, from_plan)
    return f"{plan_name(catalog, from_plan) if from_plan else '—'} → {plan_name(catalog, to_plan) if to_plan else '—'}"


@bp.app_context_processor
def _labels():
    cache: dict = {}

    def plan_transition(event) -> Markup:
        if "catalog" not in cache:
            cache["catalog"] = plan_catalog()
        text = transition_text(event, cache["catalog"])
        return escape(text) if text else Markup("—")

    return {"event_label": event_label, "plan_transition": plan_transition}


def csv_export(f: EventFilters):
    catalog = plan_catalog()
    headers = [_("Occurred"), _("Event"), _("Account id"), _("Account"), _("From plan"), _("To plan"),
               _("Previous amount"), _("New amount"), _("MRR impact"), _("MRR after"), _("Currency"),
               _("Stripe event")]

    def cells(r):
        return (r.occurred_at, r.type, r.account_id, r.account_name,
                plan_name(catalog, r.from_plan) if r.from_plan else None,
                plan_name(catalog, r.to_plan) if r.to_plan else None,
                r.previous_amount, r.new_amount, r.amount_delta, r.committed_mrr, r.currency, r.stripe_event_id)

    return exports.csv_response("billing-events.csv", headers, queries.billing_events_export_stmt(f), cells)


@bp.get("")
def index():
    f = EventFilters.from_args(request.args)
    if exports.wants_csv(request.args):
        return csv_export(f)
    return hx.render("ledger/index.html", "event_table", f=f, events=queries.billing_events_page(f),
                     view_labels=VIEW_LABELS, event_types=EVENT_TYPES)
