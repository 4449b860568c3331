"""Self-contained HTML report: stages write sections, the report rule assembles them.

A *section* is an HTML fragment file (``results/report/sections/<order>_<name>.html``) whose
figures are inline base64 PNGs, so the assembled ``results/report/index.html`` is a single
file a scientist can mail around. Stages build fragments with the helpers below.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from vitriflow.io import atomic_path

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;background:#f7f8fa}
header{background:#17324d;color:#fff;padding:1.2rem 2rem}
header h1{margin:0;font-size:1.6rem} header p{margin:.3rem 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde2e8;padding:.5rem 2rem;position:sticky;top:0}
nav a{margin-right:1rem;color:#17324d;text-decoration:none;font-size:.9rem}
main{padding:1rem 2rem;max-width:1200px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:1rem 1.5rem;margin:1rem 0}
h2{margin-top:0;color:#17324d} h3{color:#2d4a66}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #dde2e8;padding:.25rem .5rem;text-align:right}
th{background:#eef2f6} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figure img{max-width:560px;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555;max-width:560px}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.5rem 0}
.bad{background:#fdecea;border-left:4px solid #d93025;padding:.5rem .8rem;margin:.5rem 0}
.kv td{text-align:left}
code{background:#f0f2f5;padding:0 .2rem}
"""


def esc(text: object) -> str:
    """HTML-escape any value."""
    return html.escape(str(text))


def figure_html(fig, caption: str = "", dpi: int = 110) -> str:
    """Render a matplotlib figure to an inline <figure> and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">{cap}</figure>'


def table_html(df: pd.DataFrame, caption: str = "", float_format: str = "{:.4g}") -> str:
    """A compact HTML table (floats formatted, index dropped)."""
    fmt = {c: float_format.format for c in df.select_dtypes("float").columns}
    body = df.to_html(index=False, border=0, formatters=fmt, na_rep="–", escape=True)
    cap = f"<p><em>{esc(caption)}</em></p>" if caption else ""
    return cap + body


def note_html(text: str, kind: str = "note") -> str:
    """A highlighted note box (kind: 'note' or 'bad')."""
    return f'<div class="{kind}">{esc(text)}</div>'


def section_html(title: str, *parts: str, anchor: str | None = None) -> str:
    """Wrap parts in a <section> with an <h2> title."""
    anchor = anchor or "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{"".join(parts)}</section>'


def skipped_reason(training_json: str | os.PathLike) -> str:
    """Why a surrogate stage wrote no model ('' if it trained): its training.json's ``skipped``."""
    import json

    return str(json.loads(Path(training_json).read_text()).get("skipped") or "")


def write_section(path: str | os.PathLike, title: str, *parts: str) -> None:
    """Write one report section fragment atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(section_html(title, *parts), encoding="utf-8")


def assemble(
    section_paths: Iterable[str | os.PathLike], out_path: str | os.PathLike,
    title: str, subtitle: str = "",
) -> None:
    """Concatenate section fragments (in the given order) into one self-contained page."""
    import re

    bodies, links = [], []
    for p in section_paths:
        text = Path(p).read_text(encoding="utf-8")
        bodies.append(text)
        m = re.search(r'<section id="([^"]+)"><h2>(.*?)</h2>', text)
        if m:
            links.append(f'<a href="#{m.group(1)}">{m.group(2)}</a>')
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{''.join(links)}</nav><main>{''.join(bodies)}</main></body></html>"
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
