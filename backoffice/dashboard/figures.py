"""The one module that builds plotly figures. Each returns JSON (data, layout, config) that
static/js/app.js hands to the vendored plotly.js; nothing is drawn from a CDN.

Every chart has a title, axis labels and a tooltip with the date and the signed change vs the
prior period, coloured with the same green/red as the rest of the UI (--pos / --neg in app.css).
Tooltip texts are formatted here, in the operator's locale, from the exact Decimal values; the
plotted coordinates are floats only because that is what a chart axis is.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import plotly.io as pio
from babel import Locale, numbers
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from markupsafe import Markup

POS = "#146c43"
NEG = "#b42318"
NEUTRAL = "#5b6478"
CURRENT = "#3448c5"
PRIOR = "#9aa3c7"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"


def tone(change) -> str:
    """The colour of a signed change: green up, red down, grey flat."""
    return POS if change > 0 else NEG if change < 0 else NEUTRAL


def plotly_locale() -> dict:
    """The operator's locale as plotly's locale format (month and day names, decimal and thousands
    symbols, the date order), from babel's data: app.js registers it, so axes and date ticks read
    "3. Dez." and "1.234,5" in German. Plotly's own locale files would cover fewer languages."""
    locale = get_locale() or Locale.parse("en")
    months, days = locale.months["format"], locale.days["format"]
    sunday_first = [6, 0, 1, 2, 3, 4, 5]  # babel counts from Monday, d3 from Sunday
    decimal, group = numbers.get_decimal_symbol(locale), numbers.get_group_symbol(locale)
    short = locale.date_formats["short"].pattern
    day_first = short.index("d") < short.index("M")
    order = "%d.%m.%Y" if day_first else "%m/%d/%Y"
    return {"name": str(locale), "format": {
        "months": [months["wide"][m] for m in range(1, 13)],
        "shortMonths": [months["abbreviated"][m] for m in range(1, 13)],
        "days": [days["wide"][d] for d in sunday_first],
        "shortDays": [days["abbreviated"][d] for d in sunday_first],
        "decimal": decimal, "thousands": group, "grouping": [3], "currency": ["", ""],
        "date": order, "periods": ["AM", "PM"], "year": "%Y", "month": "%b %Y",
        "dayMonth": "%-d. %b" if day_first else "%b %-d", "dayMonthYear": "%-d. %b %Y" if day_first else "%b %-d, %Y",
    }, "separators": decimal + group}


def _json(fig: dict) -> Markup:
    """Figure JSON (plotly's own encoder) safe to place inside <script type="application/json">,
    with the operator's locale (plotly_locale) and its number separators on the layout.
    Figures are built as plain dicts in plotly's figure schema and serialised without
    per-property validation: validating a go.Figure costs ~50 ms a chart, more than its SQL."""
    locale = plotly_locale()
    fig = {**fig, "locale": locale, "layout": {**fig["layout"], "separators": locale["separators"]}}
    text = pio.to_json(fig, validate=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        # automargin: tick labels (tilted category names, long German words) push the axis title
        # out instead of running over it.
        "xaxis": {"title": {"text": x_title}, "showgrid": False, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "gridcolor": "#eef0f5",
                  "separatethousands": True, "automargin": True},
        "margin": {"l": 64, "r": 16, "t": 48, "b": 48},
        "height": 300,
        "font": {"family": FONT, "size": 13, "color": "#1b2030"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "closest",
        # Below the chart: above it, beside a long title ("Kumulierter Nettoumsatz"), it overlapped.
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.42, "yanchor": "top"},
        **extra,
    }


def trend(title: str, y_title: str, dates: Sequence[date], values: Sequence, prior_dates: Sequence[date],
          prior_values: Sequence, fmt: Callable, signed_fmt: Callable, area: bool = False,
          date_fmt: Callable | None = None) -> Markup:
    """Current period as a solid line, the prior period dotted beneath it on the same days."""
    date_fmt = date_fmt or (lambda d: format_date(d, "medium"))
    changes = [v - p for v, p in zip(values, prior_values, strict=True)]
    x = [d.isoformat() for d in dates]
    custom = [
        [date_fmt(d), fmt(v), date_fmt(pd), fmt(p), signed_fmt(c)]
        for d, v, pd, p, c in zip(dates, values, prior_dates, prior_values, changes, strict=True)
    ]
    tones = [tone(c) for c in changes]
    prior_name, current_name = _("Prior period"), _("Current period")
    current = {
        "type": "scatter", "x": x, "y": [float(v) for v in values], "name": current_name,
        "mode": "lines+markers", "line": {"color": CURRENT, "width": 3}, "marker": {"size": 5, "color": tones},
        "customdata": custom, "hoverlabel": {"bgcolor": tones, "font": {"color": "#fff"}},
        "hovertemplate": "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[4]} "
        + _("vs prior period") + "<extra></extra>",
    }
    if area:
        current.update(fill="tozeroy", fillcolor="rgba(52,72,197,0.08)")
    prior = {
        "type": "scatter", "x": x, "y": [float(p) for p in prior_values], "name": prior_name, "mode": "lines",
        "line": {"color": PRIOR, "dash": "dot", "width": 2}, "customdata": custom,
        "hovertemplate": "%{customdata[2]}<br>%{customdata[3]}<extra>" + prior_name + "</extra>",
    }
    return _json({"data": [prior, current], "layout": _layout(title, _("Date"), y_title)})


def bars(title: str, x_title: str, y_title: str, labels: Sequence[str], values: Sequence,
         texts: Sequence[str], colors: Sequence[str] | None = None, hover_title: Sequence[str] | None = None,
         prior: Sequence | None = None, prior_texts: Sequence[str] | None = None) -> Markup:
    """A bar chart; with `prior`, the prior period as grey bars beside the current ones."""
    heads = list(hover_title or labels)
    data = []
    if prior is not None:
        prior_name = _("Prior period")
        data.append({
            "type": "bar", "x": list(labels), "y": [float(p) for p in prior], "name": prior_name,
            "marker": {"color": PRIOR}, "customdata": [[h, t] for h, t in zip(heads, prior_texts or [], strict=False)],
            "hovertemplate": "%{customdata[0]}<br>%{customdata[1]}<extra>" + prior_name + "</extra>",
        })
    current = {
        "type": "bar", "x": list(labels), "y": [float(v) for v in values], "name": _("Current period"),
        "marker": {"color": list(colors) if colors else CURRENT},
        "customdata": [[h, t] for h, t in zip(heads, texts, strict=True)],
        "hovertemplate": "<b>%{customdata[0]}</b><br>%{customdata[1]}<extra></extra>",
    }
    if colors:
        current["hoverlabel"] = {"bgcolor": list(colors)}
    data.append(current)
    layout = _layout(title, x_title, y_title, barmode="group", showlegend=prior is not None)
    if colors:
        layout["yaxis"].update(rangemode="normal", zeroline=True, zerolinecolor="#b9c0d0")
    return _json({"data": data, "layout": layout})
