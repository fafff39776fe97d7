"""The whole price book as one JSON document (issue 20 part 6; DESIGN "Invoicing, machine to
machine"), the same for `backoffice invoicing prices export|import` and `GET|PUT /api/v1/price-book`,
so a price list can live in version control. Money and quantities are decimal strings. An import
is validated as a whole — each entry as the price book's form checks it, no key twice on one
valid-from day — and a bad entry refuses all of it, naming the entry; a good one replaces the
whole book in one transaction, audited with the book before and after."""
from __future__ import annotations

from decimal import Decimal

from backoffice.errors import BadRequest, Unprocessable
from backoffice.extensions import db
from backoffice.invoicing.models import AddonPrice, MeteredPrice, PlanAllowance, PlanPrice, VatSetting
from backoffice.invoicing.pricebook import KINDS, parse_form
from backoffice.operators.services import audit
from backoffice.usage.models import METRICS

SECTIONS = {"plans": "plans", "add_ons": "add-ons", "metered": "metered", "vat": "vat"}  # document → kind slug
FIELDS = {  # document field → form field, per section
    "plans": ("plan", "name", "currency", "monthly_base", "setup_fee", "included", "valid_from"),
    "add_ons": ("addon", "period", "price", "currency", "valid_from"),
    "metered": ("metric", "unit_price", "currency", "valid_from"),
    "vat": ("seller_country", "domestic_countries", "domestic_rate", "valid_from"),
}


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def export() -> dict:
    plans = db.session.execute(db.select(PlanPrice).order_by(PlanPrice.plan, PlanPrice.valid_from)).scalars()
    addons = db.session.execute(db.select(AddonPrice).order_by(AddonPrice.addon, AddonPrice.valid_from)).scalars()
    metered = db.session.execute(db.select(MeteredPrice).order_by(MeteredPrice.metric, MeteredPrice.valid_from))
    vat = db.session.execute(db.select(VatSetting).order_by(VatSetting.valid_from)).scalars()
    return {
        "plans": [{"plan": p.plan, "name": p.name, "currency": p.currency, "monthly_base": _text(p.monthly_base),
                   "setup_fee": _text(p.setup_fee),
                   "included": {a.metric: _text(a.included_quantity) for a in p.allowances},
                   "valid_from": p.valid_from.isoformat()} for p in plans],
        "add_ons": [{"addon": a.addon, "period": a.period, "price": _text(a.price), "currency": a.currency,
                     "valid_from": a.valid_from.isoformat()} for a in addons],
        "metered": [{"metric": m.metric, "unit_price": _text(m.unit_price), "currency": m.currency,
                     "valid_from": m.valid_from.isoformat()} for m in metered.scalars()],
        "vat": [{"seller_country": v.seller_country, "domestic_countries": v.domestic_countries.split(","),
                 "domestic_rate": _text(v.domestic_rate), "valid_from": v.valid_from.isoformat()} for v in vat],
    }


def parse(document) -> list[tuple[str, dict]]:
    """Every entry, typed and checked: (kind slug, the form's values). BadRequest names the entry
    (`plans[2].monthly_base`) and nothing is written."""
    if not isinstance(document, dict):
        raise BadRequest("The price book must be a JSON object with plans, add_ons, metered and vat.")
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise BadRequest(f"Unknown price book section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}.",
                         field=unknown[0])
    entries, seen = [], {}
    for section, slug in SECTIONS.items():
        items = document.get(section, [])
        if not isinstance(items, list):
            raise BadRequest(f"{section} must be a list of entries.", field=section)
        kind = KINDS[slug]
        for i, item in enumerate(items):
            name = f"{section}[{i}]"
            form = _form(section, item, name)
            try:
                values = parse_form(kind, form)
            except BadRequest as e:
                raise BadRequest(f"{name}: {e.message}", field=f"{name}.{_document_field(e.field)}") from None
            key = (slug, values.get(kind.key) if kind.key else "", values["valid_from"])
            if key in seen:
                raise Unprocessable(f"{name}: {seen[key]} has the same key valid from {values['valid_from']}.",
                                    field=f"{name}.valid_from")
            seen[key] = name
            entries.append((slug, values))
    return entries


def _document_field(form_field: str | None) -> str:
    if form_field and form_field.startswith("included_"):
        return "included." + form_field.removeprefix("included_")
    return form_field or ""


def _form(section: str, item, name: str) -> dict:
    """A document entry as the strings the price book's form takes."""
    if not isinstance(item, dict):
        raise BadRequest(f"{name} must be an object.", field=name)
    extra = sorted(set(item) - set(FIELDS[section]))
    if extra:
        raise BadRequest(f"{name}: unknown field {extra[0]!r}.", field=f"{name}.{extra[0]}")
    form = {}
    for key, value in item.items():
        if key == "included":
            if not isinstance(value, dict):
                raise BadRequest(f"{name}: included must be an object of metric → quantity.", field=f"{name}.included")
            for metric, quantity in value.items():
                if metric not in METRICS:
                    raise BadRequest(f"{name}: unknown metric {metric!r}; known: {', '.join(METRICS)}.",
                                     field=f"{name}.included.{metric}")
                form[f"included_{metric}"] = _string(quantity, f"{name}.included.{metric}")
        elif key == "domestic_countries":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise BadRequest(f"{name}: domestic_countries must be a list of country codes.",
                                 field=f"{name}.domestic_countries")
            form[key] = ",".join(value)
        else:
            form[key] = _string(value, f"{name}.{key}")
    return form


def _string(value, field: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string (money and quantities as decimal strings, like \"49.00\").",
                         field=field)
    return value


def replace(document, actor) -> dict:
    """The whole price book replaced by `document` (validated first), one transaction, audited."""
    entries = parse(document)
    before = export()
    db.session.execute(db.delete(PlanAllowance))  # SQLite does not cascade
    for model in (PlanPrice, AddonPrice, MeteredPrice, VatSetting):
        db.session.execute(db.delete(model))
    for slug, values in entries:
        row = KINDS[slug].model(**{k: v for k, v in values.items() if not k.startswith("included_")})
        if isinstance(row, PlanPrice):
            row.allowances = [PlanAllowance(metric=k.removeprefix("included_"), included_quantity=v)
                              for k, v in sorted(values.items()) if k.startswith("included_") and v is not None]
        db.session.add(row)
    db.session.flush()
    after = export()
    audit(actor, "price_book.replace", "price_book", None, before=before, after=after)
    db.session.commit()
    return after
