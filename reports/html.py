"""index.html (one self-contained file) and report.md, from Jinja2 templates.

index.html: autoescape is on, so every string from a config, a trial id or the
manifest is HTML-escaped; the only markup not from the template is the base64
PNG data URI of each figure. report.md: every printed value is escaped for
Markdown tables (``|``), for links and images (``[``, ``]``, bare addresses)
and for the HTML some Markdown renderers pass through (see md_escape).
"""

from __future__ import annotations

import base64
import functools
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from reports.errors import FailedTrial
from reports.figures import RenderedFigure
from reports.interactive import InteractiveChart
from reports.output import write_text
from reports.summary import TableText

TEMPLATES = Path(__file__).parent / "templates"
_MD_ESCAPES = str.maketrans({"|": "\\|", "[": "\\[", "]": "\\]"})
# the ':' of '://' and the '.' of 'www.': GitHub's autolink extension makes links of these without brackets
_BARE_ADDRESS = re.compile(r"(?i)(?<=[a-z0-9]):(?=//)|\bwww\.")


@dataclass(frozen=True)
class ReportPage:
    """Everything the two templates print."""

    title: str
    facts: list[tuple[str, str]]
    warning: str | None  # the run has not finished cleanly
    energy_estimated: bool
    energy_statement: str
    hardware_warning: str | None  # the trials ran on more than one GPU model
    summary: list[tuple[str, str]]
    pareto: TableText
    model_fronts: list[tuple[str, TableText]]  # (GPU model, the front of its trials), when there are several
    components: TableText  # energy by component: measured or estimated, sources, share of energy_j
    provenance: TableText  # one row per trial that recorded its meter's provenance
    figures: list[RenderedFigure]
    failed: list[FailedTrial]  # trial id, one-line summary, full error text
    unreadable: list[tuple[str, str]]  # (trial id, what could not be read)
    trials: TableText
    chart: InteractiveChart | None = None  # the interactive accuracy-energy chart (None: no trial to draw)
    exports: TableText | None = None  # the run's exported artifacts, measured (None: nothing exported)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment(*, autoescape: bool, finalize: Any = None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,  # why: a misspelt name must fail the tests, not print nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def rows_html(rows: list[list[str]]) -> markupsafe.Markup:
    """Table body rows with every cell HTML-escaped."""
    # why not a Jinja loop: 10k trials x 40 columns is 400k cells; escaping and joining here is ~5x faster
    escape = functools.partial(html.escape, quote=True)
    return markupsafe.Markup("\n".join("<tr><td>" + "</td><td>".join(map(escape, row)) + "</td></tr>" for row in rows))


def render_html(page: ReportPage) -> str:
    """The report as one HTML document with its images inlined."""
    env = _environment(autoescape=True)
    env.filters["data_uri"] = _data_uri
    env.filters["rows_html"] = rows_html
    return env.get_template("index.html.j2").render(page=page)


def md_escape(value: Any) -> str:
    """A value as Markdown text that renders as itself, on one line: HTML special characters, pipes (tables),
    brackets (links, images) and bare addresses (which GitHub's Markdown links) escaped.

    Every value report.md prints passes through here (the template's ``finalize``)."""
    if value is None:
        return ""
    # why backslashes first: a backslash in a value must not turn one of our escapes back into markup
    text = html.escape(str(value), quote=False).replace("\\", "\\\\").translate(_MD_ESCAPES)
    text = _BARE_ADDRESS.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], text)
    return text.replace("\r", " ").replace("\n", " ")


def render_markdown(page: ReportPage) -> str:
    """The summary, the Pareto table (and per GPU model), the energy components, the figures left out and the
    failed trials as Markdown."""
    return _environment(autoescape=False, finalize=md_escape).get_template("report.md.j2").render(page=page)


def write_pages(page: ReportPage, out_dir: Path) -> Mapping[str, Path]:
    """Write index.html and report.md into ``out_dir``; return their paths by name."""
    return {
        "index.html": write_text(out_dir / "index.html", render_html(page)),
        "report.md": write_text(out_dir / "report.md", render_markdown(page)),
    }
