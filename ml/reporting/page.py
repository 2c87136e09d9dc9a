"""The leadership report as data (JSON-able sections) and as one self-contained HTML page.

The page needs no network: charts are inline PNG images (matplotlib), styles are inline, and there is no
script, so it opens the same in a mail client, a browser or a PDF printer. Each section says plainly when its
data is thin or missing instead of breaking.

The first screen is an executive summary: a few headline :class:`Finding` s with numbers, each linking to its
section. Small multiples are collapsed (``<details>``) in the order the section gives them (worst first), and
each section prints on its own page.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Figure",
    "Finding",
    "Section",
    "Table",
    "fig_to_png",
    "render_html",
    "report_json",
    "round_for_people",
]


@dataclass
class Figure:
    title: str
    png: bytes
    alt: str
    name: str  # file name stem for the slide PNG
    collapsed: bool = False  # a small multiple: shown folded in a <details>, its title as the summary
    badge: str = ""  # a short status beside a collapsed title ("72% chance of crossing", "worsened")


@dataclass
class Finding:
    """One headline of the executive summary: a sentence with its numbers and the section it comes from."""

    headline: str
    detail: str
    section: str  # the id of the section it links to
    severity: str = "info"  # "bad", "good" or "info": the mark beside it (with words, never colour alone)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str | None = None


@dataclass
class Section:
    id: str
    title: str
    summary: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    empty: str | None = None  # what is missing, when the section has no data
    data: dict[str, Any] = field(default_factory=dict)  # the JSON form of the section

    @property
    def has_content(self) -> bool:
        return bool(self.figures or self.tables or self.cards)


def round_for_people(value: Any) -> Any:
    """Numbers as a person reads them: 3 significant figures, thousands separators, no float noise."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 0.01 or a == 0:
            return f"{value:.2f}"
        return f"{value:.2g}"
    return value


def fig_to_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:24px} header p{margin:4px 0 0;color:#cfd8e3}
nav{padding:8px 32px;background:#e9edf2;font-size:14px} nav a{margin-right:16px;color:#1f2d3d}
main{padding:8px 32px 48px;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;margin:20px 0;padding:16px 24px}
h2{margin-top:4px;font-size:20px;border-bottom:2px solid #1f2d3d;padding-bottom:6px}
h3{font-size:16px;margin:18px 0 6px}
figure{margin:12px 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#444}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.empty{padding:12px;background:#f4f4f4;border-left:4px solid #888;color:#333}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #cfd6de;border-radius:6px;padding:10px 14px;width:340px;background:#fcfcfd;font-size:13px}
.card h4{margin:0 0 6px;font-size:14px}
.note{font-size:12px;color:#555}
.summary{background:#fff;border:2px solid #1f2d3d;border-radius:6px;margin:20px 0;padding:12px 24px}
.summary h2{border:0;margin-bottom:4px}
.summary ol{margin:6px 0;padding-left:22px} .summary li{margin:8px 0;font-size:15px}
.summary .mark{font-weight:bold;margin-right:6px}
.summary .bad .mark{color:#a4161a} .summary .good .mark{color:#2f6b1f} .summary .info .mark{color:#1f2d3d}
.summary .detail{display:block;color:#333;font-size:13px}
details.multiple{border:1px solid #dde3ea;border-radius:4px;margin:6px 0;padding:4px 10px}
details.multiple summary{cursor:pointer;font-size:14px;padding:4px 0}
details.multiple .badge{font-weight:bold;margin-left:6px}
@media print{
  body{background:#fff} nav{display:none} header{background:#fff;color:#000;padding:0}
  header p{color:#333}
  section{border:0;break-before:page;margin:0;padding:0}
  .summary{break-after:page;border:0}
  details.multiple::details-content{content-visibility:visible;display:block}
  figure,table{break-inside:avoid}
}
"""


def _cell(v: Any) -> str:
    shown = round_for_people(v)
    cls = ' class="num"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
    return f"<td{cls}>{html.escape(str(shown))}</td>"


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<h3>{html.escape(t.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _figure_html(f: Figure) -> str:
    b64 = base64.b64encode(f.png).decode("ascii")
    img = f'<img alt="{html.escape(f.alt)}" src="data:image/png;base64,{b64}"/>'
    if f.collapsed:
        badge = f'<span class="badge">{html.escape(f.badge)}</span>' if f.badge else ""
        return (
            f'<details class="multiple"><summary>{html.escape(f.title)}{badge}</summary>'
            f"<figure>{img}</figure></details>"
        )
    return f"<figure>{img}<figcaption>{html.escape(f.title)}</figcaption></figure>"


_MARKS = {"bad": "Attention:", "good": "Good news:", "info": "Note:"}


def _summary_html(findings: Sequence[Finding], sections: Sequence[Section]) -> str:
    titles = {s.id: s.title for s in sections}
    items = "".join(
        f'<li class="{html.escape(f.severity)}"><span class="mark">{_MARKS.get(f.severity, "Note:")}</span>'
        f'<a href="#{html.escape(f.section)}">{html.escape(f.headline)}</a>'
        f'<span class="detail">{html.escape(f.detail)} '
        f"(see {html.escape(titles.get(f.section, f.section))})</span></li>"
        for f in findings
    )
    return (
        '<section id="summary" class="summary" data-section="summary" aria-labelledby="summary-title">'
        f'<h2 id="summary-title">What matters this week</h2><ol>{items}</ol></section>'
    )


def _card_html(c: dict[str, Any]) -> str:
    rows = "".join(
        f"<div><b>{html.escape(str(k).replace('_', ' ').capitalize())}:</b> "
        f"{html.escape(str(round_for_people(v)))}</div>"
        for k, v in c.items()
        if k != "title"
    )
    return f'<div class="card"><h4>{html.escape(str(c.get("title", "")))}</h4>{rows}</div>'


def render_html(
    title: str, subtitle: str, sections: Sequence[Section], findings: Sequence[Finding] = ()
) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = [_summary_html(findings, sections)] if findings else []
    for s in sections:
        inner = [f"<p>{html.escape(s.summary)}</p>"] if s.summary else []
        if s.empty and not s.has_content:
            inner.append(f'<div class="empty">{html.escape(s.empty)}</div>')
        if s.cards:
            inner.append('<div class="cards">' + "".join(_card_html(c) for c in s.cards) + "</div>")
        inner += [_figure_html(f) for f in s.figures]
        inner += [_table_html(t) for t in s.tables]
        parts.append(
            f'<section id="{s.id}" data-section="{s.id}"><h2>{html.escape(s.title)}</h2>{"".join(inner)}</section>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f'<nav aria-label="Sections">{nav}</nav><main>{"".join(parts)}</main></body></html>'
    )


def report_json(
    title: str, generated_at: dt.datetime, sections: Sequence[Section], findings: Sequence[Finding] = ()
) -> dict[str, Any]:
    return {
        "title": title,
        "generated_at": generated_at.isoformat(),
        "summary": [
            {"headline": f.headline, "detail": f.detail, "section": f.section, "severity": f.severity}
            for f in findings
        ],
        "sections": [
            {
                "id": s.id,
                "title": s.title,
                "summary": s.summary,
                "empty": s.empty if not s.has_content else None,
                "tables": [
                    {"title": t.title, "columns": t.columns, "rows": t.rows, "note": t.note} for t in s.tables
                ],
                "cards": s.cards,
                "figures": [{"title": f.title, "name": f.name} for f in s.figures],
                "data": s.data,
            }
            for s in sections
        ],
    }
