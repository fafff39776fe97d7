"""CSV exports of the lists: streamed row by row, so memory stays flat and there is no row cap.

The query runs with `yield_per` (a server-side cursor on PostgreSQL); each row becomes one CSV
line as the client reads it. Headers are translated, dates are ISO 8601 (UTC, `Z`), money is a
plain decimal string with its currency in its own column.

Text that a spreadsheet would run as a formula (a cell beginning with `=`, `+`, `-`, `@`, a tab or
a carriage return: a customer named `=HYPERLINK(...)`) is neutralised with a leading apostrophe,
as OWASP's CSV-injection advice says; numbers, money and dates are written as they are (a
negative amount stays a number).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from flask import Response, stream_with_context
from flask_babel import gettext as _

from backoffice.errors import BadRequest
from backoffice.extensions import db

YIELD_PER = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """One CSV cell: ISO dates, exact decimals, empty for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def stream_rows(stmt) -> Iterator:
    """The rows of `stmt`, fetched `YIELD_PER` at a time (never the whole result in memory)."""
    result = db.session.execute(stmt.execution_options(yield_per=YIELD_PER))
    try:
        yield from result
    finally:
        result.close()


def csv_lines(headers: list[str], rows: Iterable, to_cells: Callable) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([cell(v) for v in to_cells(row)])
        if buf.tell() > 64 * 1024:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def csv_response(filename: str, headers: list[str], stmt, to_cells: Callable) -> Response:
    """A streamed `text/csv` download of every row of `stmt`."""
    body = stream_with_context(csv_lines([str(h) for h in headers], stream_rows(stmt), to_cells))
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def wants_csv(args) -> bool:
    """`?format=csv` asks for the CSV export; any other format is a 400 naming the parameter."""
    fmt = (args.get("format") or "").strip().lower()
    if fmt not in ("", "html", "csv"):
        raise BadRequest(_("format must be csv or html."), field="format")
    return fmt == "csv"
