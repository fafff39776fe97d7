"""Reads for the operator list and the audit log."""
from __future__ import annotations

from backoffice.extensions import db
from backoffice.operators.filters import AuditFilters
from backoffice.operators.models import AuditEntry, Operator
from backoffice.pagination import Page, paginate


def operators_page(page: int, page_size: int = 50) -> Page:
    stmt = db.select(Operator).order_by(Operator.email)
    return paginate(stmt, page, page_size)


def audit_page(f: AuditFilters) -> Page:
    stmt = db.select(AuditEntry)
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.operator:
        stmt = stmt.where(AuditEntry.operator_email.ilike(f"%{f.operator}%"))
    if f.target:
        stmt = stmt.where(AuditEntry.target_id == f.target)
    if f.result:
        stmt = stmt.where(AuditEntry.result == f.result)
    if f.date_from:
        stmt = stmt.where(AuditEntry.at >= f.date_from)
    if f.date_to:
        stmt = stmt.where(AuditEntry.at < f.date_to)
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return paginate(stmt, f.page, f.page_size)


def audit_actions() -> list[str]:
    return list(db.session.execute(db.select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars())
