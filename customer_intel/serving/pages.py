"""The server-rendered HTML of ``GET /at-risk``: the live feed as a table a person can leave open.

One self-contained page (inline CSS, no script, no external asset) that reloads itself with a
``<meta http-equiv="refresh">``: nothing to build or serve beside it; a Content-Security-Policy needs only
``default-src 'none'; style-src 'unsafe-inline'`` (or the style block's hash) for it. Every value from the feed is escaped - customer ids and
reasons come from callers' data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

TITLE = "customer_intel - live at-risk feed"
COLUMNS = ("customer", "probability", "band", "reasons", "counterfactual", "crossed at")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2433; }
h1 { font-size: 1.3rem; margin: 0 0 .4rem; }
p.summary { color: #4a5368; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #dde1ea; vertical-align: top; }
th { background: #f3f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.band-high { color: #a3142c; font-weight: 600; }
td.band-medium { color: #a35c00; }
td.empty { color: #4a5368; font-style: italic; }
td.when { white-space: nowrap; }
"""


def _text(value) -> str:
    return "" if value is None else escape(str(value), quote=True)


def _probability(value) -> str:
    return "" if value is None else f"{float(value):.3f}"


def _when(value) -> str:
    """An instant as ``2026-06-28 11:50:58 UTC`` in a ``<time>`` whose ``datetime`` keeps the feed's exact ISO text: the full ISO
    form (microseconds and offset) wrapped mid-token in a narrow column of the browser."""
    if value is None:
        return ""
    try:
        shown = datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return _text(value)
    return f'<time datetime="{_text(value)}">{shown}</time>'


def _row(row: dict) -> str:
    band = row.get("risk_band")
    cells = (
        f"<td>{_text(row.get('customer_id'))}</td>",
        f'<td class="num">{_probability(row.get("probability"))}</td>',
        f'<td class="band-{_text(band)}">{_text(band)}</td>',
        f"<td>{_text(row.get('reasons'))}</td>",
        f"<td>{_text(row.get('counterfactual'))}</td>",
        f'<td class="when">{_when(row.get("crossed_at"))}</td>',
    )
    return f'<tr data-customer-id="{_text(row.get("customer_id"))}">{"".join(cells)}</tr>'


def render_at_risk(snapshot: dict, refresh_seconds: int = 5) -> str:
    """The page for a ``LiveFeed.snapshot()``: a summary line and one table row per at-risk customer."""
    refresh = max(1, int(refresh_seconds))
    rows = snapshot.get("at_risk") or []
    threshold = snapshot.get("threshold")
    summary = (f"simulated as of {_text(snapshot.get('as_of') or 'no event yet')} · threshold "
               f"{_text(f'{threshold:.3f}' if threshold is not None else '?')} · customers known {_text(snapshot.get('customers_known', 0))}"
               f" · events {_text(snapshot.get('events', 0))} · crossed {_text(snapshot.get('crossed_total', 0))}"
               f" · recovered {_text(snapshot.get('recovered_total', 0))}")
    if snapshot.get("dropped_total"):
        summary += f" · older crossings not shown {_text(snapshot['dropped_total'])}"
    if rows:
        body = "\n".join(_row(r) for r in rows)
    else:
        body = f'<tr><td class="empty" colspan="{len(COLUMNS)}">No customer is at risk right now.</td></tr>'
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>{escape(TITLE)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(TITLE)}</h1>
<p class="summary">{summary}</p>
<table id="at-risk">
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
</body>
</html>
"""
