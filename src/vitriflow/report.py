"""Self-contained HTML report: stages write sections, the report rule assembles them.

A *section* is an HTML fragment file (``results/report/sections/<order>_<name>.html``) whose
figures are inline base64 PNGs, so the assembled ``results/report/index.html`` is a single
file a scientist can mail around. Stages build fragments with the helpers below.

A section may carry *headline* cards (``headline(...)``: the one or two numbers a reader wants
first, each marked good / bad / neutral); ``assemble`` collects them into an "At a glance" panel
at the top of the page, each card linking to its section.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from vitriflow.io import atomic_path

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;\
color:#1d2329;background:#f7f8fa}
header{background:#17324d;color:#fff;padding:1.2rem 2rem}
header h1{margin:0;font-size:1.6rem} header p{margin:.3rem 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde2e8;padding:.5rem 2rem;position:sticky;top:0}
nav a{margin-right:1rem;color:#17324d;text-decoration:none;font-size:.9rem}
main{padding:1rem 2rem;max-width:1200px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;\
padding:1rem 1.5rem;margin:1rem 0}
h2{margin-top:0;color:#17324d} h3{color:#2d4a66}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
.table-scroll{max-width:100%;overflow-x:auto}
pre{max-width:100%;overflow-x:auto}
th,td{border:1px solid #dde2e8;padding:.25rem .5rem;text-align:right}
th{background:#eef2f6} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figure img{max-width:560px;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555;max-width:560px}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.5rem 0;\
overflow-wrap:anywhere}
.bad{background:#fdecea;border-left:4px solid #d93025;padding:.5rem .8rem;margin:.5rem 0}
.kv td{text-align:left}
code{background:#f0f2f5;padding:0 .2rem}
.cards{display:flex;flex-wrap:wrap;gap:.7rem}
.card{flex:1 1 230px;max-width:360px;display:block;border:1px solid #dde2e8;\
border-left:6px solid #8a96a3;border-radius:4px;
padding:.5rem .7rem;color:inherit;text-decoration:none;background:#fff}
.card:hover{background:#f3f6f9} .card.good{border-left-color:#1e8e3e} \
.card.bad{border-left-color:#d93025}
.card-label{font-size:.78rem;color:#5b6570} \
.card-value{font-size:1.25rem;font-weight:600;margin:.15rem 0}
.card-detail{font-size:.75rem;color:#5b6570;overflow-wrap:anywhere}
"""

HEADLINE_KINDS = ("good", "bad", "neutral")
_HEADLINE_TAG = '<script type="application/json" class="vf-headline">'



def esc(text: object) -> str:
    """HTML-escape any value."""
    return html.escape(str(text))


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend: every figure of the report is
    rendered to an inline PNG, on machines with no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_html(fig, caption: str = "", dpi: int = 110) -> str:
    """Render a matplotlib figure to an inline <figure> and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">{cap}</figure>'


def panel_grid(n: int, ncols: int = 4, size: tuple[float, float] = (3.4, 2.6), **subplots_kw):
    """``n`` panels in rows of at most ``ncols`` (a single long row shrinks every panel to
    unreadable in the page); returns the figure and the ``n`` used axes, the rest hidden."""
    plt = pyplot()
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False, **subplots_kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def table_html(df: pd.DataFrame, caption: str = "", float_format: str = "{:.4g}") -> str:
    """A compact HTML table (floats formatted, index dropped) in a box that scrolls sideways
    when the table is wider than the page, so the page itself never does."""
    fmt = {c: float_format.format for c in df.select_dtypes("float").columns}
    body = df.to_html(index=False, border=0, formatters=fmt, na_rep="–", escape=True)
    cap = f"<p><em>{esc(caption)}</em></p>" if caption else ""
    return f'{cap}<div class="table-scroll">{body}</div>'


def note_html(text: str, kind: str = "note") -> str:
    """A highlighted note box (kind: 'note' or 'bad')."""
    return f'<div class="{kind}">{esc(text)}</div>'


def headline(label: str, value: str, detail: str = "", kind: str = "neutral") -> dict[str, str]:
    """One "At a glance" card.

    ``kind`` is good (meets its target / beats its baseline), bad or neutral.
    """
    if kind not in HEADLINE_KINDS:
        raise ValueError(f"headline kind: expected one of {HEADLINE_KINDS}, got {kind!r}")
    return {"label": str(label), "value": str(value), "detail": str(detail), "kind": kind}


def section_html(title: str, *parts: str, anchor: str | None = None,
                 headlines: Sequence[Mapping[str, str]] = ()) -> str:
    """Wrap parts in a <section> with an <h2> title; headline cards ride along as JSON."""
    anchor = anchor or "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    data = ""
    if headlines:  # "</" would end the <script> early
        data = _HEADLINE_TAG + json.dumps(list(headlines)).replace("</", "<\\/") + "</script>"
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{data}{"".join(parts)}</section>'


def section_headlines(text: str) -> list[dict[str, str]]:
    """The headline cards a section fragment carries."""
    m = re.search(re.escape(_HEADLINE_TAG) + r"(.*?)</script>", text, flags=re.S)
    return json.loads(m.group(1)) if m else []


def glance_html(cards: Sequence[tuple[str, Mapping[str, str]]]) -> str:
    """The "At a glance" panel: (section anchor, card) pairs, in report order."""
    body = "".join(
        f'<a class="card {esc(c.get("kind", "neutral"))}" href="#{esc(anchor)}">'
        f'<div class="card-label">{esc(c["label"])}</div>'
        f'<div class="card-value">{esc(c["value"])}</div>'
        f'<div class="card-detail">{esc(c.get("detail", ""))}</div></a>' for anchor, c in cards)
    return ('<section id="at-a-glance"><h2>At a glance</h2><div class="cards">' + body + "</div>"
            "<p><em>Green: meets its target or beats its baseline; red: does not, or failed; "
            "grey: a measurement without a target. Each card links to its section.</em></p>"
            "</section>")


def skipped_reason(training_json: str | os.PathLike) -> str:
    """Why a surrogate stage wrote no model ('' if it trained): its training.json's ``skipped``."""
    import json

    return str(json.loads(Path(training_json).read_text()).get("skipped") or "")


def write_section(path: str | os.PathLike, title: str, *parts: str,
                  headlines: Sequence[Mapping[str, str]] = ()) -> None:
    """Write one report section fragment atomically (with its headline cards, if any)."""
    with atomic_path(path) as tmp:
        tmp.write_text(section_html(title, *parts, headlines=headlines), encoding="utf-8")


def assemble(
    section_paths: Iterable[str | os.PathLike], out_path: str | os.PathLike,
    title: str, subtitle: str = "",
) -> None:
    """Concatenate section fragments (in the given order) into one self-contained page, headed
    by the "At a glance" panel of their headline cards."""
    bodies, links, cards = [], [], []
    for p in section_paths:
        text = Path(p).read_text(encoding="utf-8")
        bodies.append(text)
        m = re.search(r'<section id="([^"]+)"><h2>(.*?)</h2>', text)
        if m:
            links.append(f'<a href="#{m.group(1)}">{m.group(2)}</a>')
            cards += [(m.group(1), c) for c in section_headlines(text)]
    if cards:
        bodies.insert(0, glance_html(cards))
        links.insert(0, '<a href="#at-a-glance">At a glance</a>')
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{''.join(links)}</nav><main>{''.join(bodies)}</main></body></html>"
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
