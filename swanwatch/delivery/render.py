"""Rendering: a notice as chat markdown, plain text or an HTML e-mail, from Jinja2 templates.

The built-in templates live in ``swanwatch/templates``; a file of the same name in
``notify.templates_dir`` overrides one. Each alert becomes a section (``alert.md.j2``,
``alert.txt.j2``, ``alert.html.j2``); one or several sections become a message
(``batch.*.j2`` for a group or a digest, ``email.html.j2`` around e-mail sections).

Data is inert in every format, whatever a template does with it: every ``{{ value }}`` is
escaped on output (:func:`chat_text` in ``*.md.j2``, :func:`plain_text` in ``*.txt.j2``,
HTML escaping in ``*.html.j2``), so an account name or a CSV field cannot make a link, a
mention (``@here``, Slack's ``<!channel>``), a heading or a list. What Swanwatch built
itself (rendered sections, action links) is marked safe (``Markup``, or ``| safe``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from swanwatch.model import JSON, Alert, LeadersReport, Severity

#: Template file suffix by channel format.
SUFFIX = {"chat": "md", "text": "txt", "email": "html"}

EVENT_WORD = {
    "firing": "",
    "escalated": "escalated: ",
    "repeat": "still open: ",
    "reminder": "reminder: ",
    "resolved": "resolved: ",
}
SEVERITY_MARK = {
    Severity.INFO: "INFO",
    Severity.WARNING: "WARNING",
    Severity.HIGH: "HIGH",
    Severity.CRITICAL: "CRITICAL",
}
SEVERITY_COLOUR = {
    Severity.INFO: "#6e7781",
    Severity.WARNING: "#bf8700",
    Severity.HIGH: "#d1495b",
    Severity.CRITICAL: "#8b0000",
}


#: Markdown characters that make links, images, code, emphasis and HTML out of text.
_MARKDOWN = re.compile(r"([\\`*\[\]<>])")
#: An underscore that could open or close emphasis (not one inside a word: john_doe).
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
#: Group mentions of chat services: @everyone, @here, @channel, @all, @room.
_MENTION = re.compile(r"(?<![\w.+-])@(?=(?:everyone|here|channel|all|room)\b)", re.IGNORECASE)
#: Put after an ``@`` so that it no longer mentions anyone (a zero-width space).
_UNMENTION = "@\u200b"


def plain_text(value: str) -> str:
    """Data as one line of plain text that pings nobody: newlines folded, group mentions
    (``@here``, ``@everyone``) broken by an invisible space."""
    return _MENTION.sub(_UNMENTION, " ".join(value.split()))


def chat_text(value: str) -> str:
    """Data as inert chat markdown: :func:`plain_text`, with the characters that make links,
    code, emphasis or HTML (Slack's ``<!channel>``, ``<url|text>``) escaped."""
    text = _MARKDOWN.sub(r"\\\1", plain_text(value))
    return _UNDERSCORE.sub(r"\\_", text)


@jinja2.pass_context
def _finalize(ctx: jinja2.runtime.Context, value: Any) -> Any:
    """Every ``{{ value }}`` of a chat or text template, made inert (see the module)."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    name = ctx.name or ""
    if name.endswith(".md.j2"):
        return chat_text(value)
    if name.endswith(".txt.j2"):
        return plain_text(value)
    return value  # HTML: autoescaped


@dataclass(frozen=True)
class Part:
    """One alert to render: the alert as it was when the notice was decided."""

    alert: Alert
    event: str
    label: str
    new_signals: tuple[str, ...] = ()
    links: Mapping[str, str] | None = None
    #: What changed since the last notice, told first (an update).
    whats_new: tuple[str, ...] = ()


def title_of(part: Part) -> str:
    """``[HIGH] escalated: Acme Corp: Champion left and usage fell``."""
    alert = part.alert
    word = EVENT_WORD.get(part.event, f"{part.event}: ")
    return plain_text(f"[{SEVERITY_MARK[alert.severity]}] {word}{part.label}: {alert.title}")


#: What the risk score means, said where it is shown.
RISK_WORDS = "how strongly the signals together point to churn, not a probability of churn"


def _facts(stake: Mapping[str, JSON]) -> list[str]:
    facts = []
    if stake.get("arr"):
        arr = float(stake["arr"])
        at_risk = stake.get("revenue_at_risk")
        if isinstance(at_risk, int | float):
            facts.append(f"${float(at_risk):,.0f} ARR at risk (of ${arr:,.0f} ARR)")
        else:
            facts.append(f"ARR ${arr:,.0f}")
    if stake.get("renewal_date"):
        days = stake.get("days_to_renewal")
        when = f" ({days} days)" if days is not None else ""
        facts.append(f"renewal {stake['renewal_date']}{when}")
    if stake.get("owner"):
        facts.append(f"owner {stake['owner']}")
    return facts


def context(part: Part) -> dict[str, Any]:
    """What an alert template sees (documented in docs/delivery.md)."""
    alert = part.alert
    new = set(part.new_signals)
    why = []
    for i, text in enumerate(alert.why_now):
        contribution = alert.contributions[i] if i < len(alert.contributions) else None
        fresh = (
            contribution is not None and contribution.fingerprint in new and part.event != "firing"
        )
        why.append({"text": text, "new": fresh})
    return {
        "alert": alert,
        "event": part.event,
        "who": part.label,
        "severity": SEVERITY_MARK[alert.severity],
        "colour": SEVERITY_COLOUR[alert.severity],
        "risk": f"{alert.score:.0%}",
        "risk_words": RISK_WORDS,
        "whats_new": list(part.whats_new),
        "reasons": [f"{r.title} ({r.severity})" for r in alert.reasons[1:]],
        "stake": alert.at_stake,
        "facts": _facts(alert.at_stake),
        "why": why,
        "play": list(alert.play),
        "links": {k: Markup(v) for k, v in (part.links or {}).items()},
        "title": title_of(part),
    }


class Renderer:
    """Renders parts into (title, body) for a channel format."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
        loaders.append(jinja2.PackageLoader("swanwatch", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
        )

    def template(self, name: str) -> jinja2.Template:
        return self.env.get_template(name)

    def section(self, fmt: str, part: Part) -> str:
        """One alert in ``fmt`` (chat, text or email)."""
        text = self.template(f"alert.{SUFFIX[fmt]}.j2").render(context(part))
        return text.strip()

    def message(self, fmt: str, parts: Sequence[Part], heading: str = "") -> tuple[str, str]:
        """One message for one or several alerts: (title, body)."""
        if not parts:
            raise ValueError("nothing to render")
        sections = [self.section(fmt, p) for p in parts]
        if len(parts) == 1:
            title = title_of(parts[0])
            heading = heading or title
        else:
            top = max((p.alert.severity for p in parts), key=lambda s: s.rank)
            labels = list(dict.fromkeys(p.label for p in parts))
            more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
            shown = ", ".join(labels[:3]) + more
            title = plain_text(
                f"[{SEVERITY_MARK[top]}] {heading or f'{len(parts)} alerts'}: {shown}"
            )
            heading = heading or f"{len(parts)} alerts"
        if fmt == "email":
            body = self.template("email.html.j2").render(
                title=title,
                heading=heading,
                sections=[Markup(s) for s in sections],
                intro="",
            )
            return title, body.strip()
        if len(parts) == 1:
            return title, sections[0]
        body = self.template(f"batch.{SUFFIX[fmt]}.j2").render(
            heading=heading, sections=[Markup(s) for s in sections]
        )
        return title, body.strip()

    def leaders(self, fmt: str, report: LeadersReport) -> tuple[str, str]:
        """The leaders' weekly digest in ``fmt``: (title, body)."""
        body = self.page(f"leaders.{SUFFIX[fmt]}.j2", r=report, chart_height=80)
        return report.title, body

    def page(self, name: str, **values: Any) -> str:
        """Any other template (the action pages, the leaders' digest)."""
        return self.template(name).render(**values).strip()
