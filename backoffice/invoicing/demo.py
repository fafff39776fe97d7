"""The demo's price book (issue 20 part 7): CHF, the demo deployments' three plans, their add-ons
priced per day or per month, metered messages, Swiss VAT — and the month-end runs of the last three
closed months, so the invoicing pages show drafts."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from backoffice.invoicing import engine, price_document, run
from backoffice.invoicing.models import InvoicingRun


def price_book(since: date, change: date) -> dict:
    """Valid from `since` on; the team plan costs more from `change` on (a month's line splits there)."""
    first, later = since.isoformat(), change.isoformat()

    def plan(key: str, name: str, base: str, setup: str, included: tuple[str, str], valid_from: str) -> dict:
        return {"plan": key, "name": name, "currency": "CHF", "monthly_base": base, "setup_fee": setup,
                "included": {"messages_in": included[0], "messages_out": included[1]}, "valid_from": valid_from}

    return {
        "plans": [plan("starter", "Starter", "19.00", "0", ("2000", "1000"), first),
                  plan("team", "Team", "49.00", "99.00", ("10000", "5000"), first),
                  plan("team", "Team", "55.00", "99.00", ("10000", "5000"), later),
                  plan("business", "Business", "149.00", "249.00", ("50000", "25000"), first)],
        "add_ons": [{"addon": addon, "period": period, "price": price, "currency": "CHF", "valid_from": first}
                    for addon, period, price in (("threema", "day", "0.10"), ("searxng-local-search", "day", "0.05"),
                                                 ("web-browser", "day", "0.20"), ("calendar", "month", "2.00"),
                                                 ("mail", "month", "3.00"), ("voice", "month", "9.00"))],
        "metered": [{"metric": "messages_in", "unit_price": "0.002", "currency": "CHF", "valid_from": first},
                    {"metric": "messages_out", "unit_price": "0.005", "currency": "CHF", "valid_from": first}],
        "vat": [{"seller_country": "CH", "domestic_countries": ["CH", "LI"], "domestic_rate": "8.1",
                 "valid_from": first}],
    }


def invoice_closed_months(now: datetime, months: int = 3) -> list[InvoicingRun]:
    """The price book, then one run of each of the last `months` closed months, oldest first."""
    this_month = engine.Period.of(now.date())
    periods = [this_month]
    for _ in range(months):
        periods.insert(0, periods[0].previous())
    earliest = date(now.year - 2, now.month, 1)
    price_document.replace(price_book(earliest, periods[-3].first_day + timedelta(days=14)), None)
    return [run.run_in_process(run.start(p, trigger="cli", actor="demo")) for p in periods[:-1]]
