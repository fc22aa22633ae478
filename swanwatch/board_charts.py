"""The account page's charts as inline SVG, drawn on the server (pure, no JavaScript):
daily usage with its baseline band and the drop marked, the risk score over time, and
tickets by week. Each chart is an ``<svg role="img">`` with a title and a text summary,
so it reads without sight too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from statistics import median

from markupsafe import Markup

WIDTH, HEIGHT = 720, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 10, 12, 24
#: Scales the median absolute deviation to a standard deviation (normal data).
_MAD_SCALE = 1.4826


@dataclass(frozen=True)
class Band:
    """A day's baseline: the same weekday's median over the past weeks, and a band of one
    robust standard deviation around it."""

    day: date
    low: float
    mid: float
    high: float


def baseline_band(
    series: Mapping[date, float], *, weeks_min: int = 4, weeks_max: int = 8
) -> list[Band]:
    """Per day with at least ``weeks_min`` same-weekday values before it: the median of the
    last ``weeks_max`` of them, +- 1.4826 x their MAD. Missing days count as zero."""
    if not series:
        return []
    first, last = min(series), max(series)
    out = []
    day = first
    while day <= last:
        past = [series.get(day - timedelta(weeks=w), 0.0) for w in range(1, weeks_max + 1)]
        past = [v for w, v in enumerate(past, start=1) if day - timedelta(weeks=w) >= first]
        if len(past) >= weeks_min:
            mid = median(past)
            spread = _MAD_SCALE * median(abs(v - mid) for v in past)
            out.append(Band(day, max(0.0, mid - spread), mid, mid + spread))
        day += timedelta(days=1)
    return out


class _Frame:
    """Maps days and values onto the drawing area."""

    def __init__(self, first: date, last: date, top: float) -> None:
        self.first = first
        self.span = max(1, (last - first).days)
        self.top = top if top > 0 else 1.0

    def x(self, day: date) -> float:
        return _LEFT + (WIDTH - _LEFT - _RIGHT) * (day - self.first).days / self.span

    def y(self, value: float) -> float:
        return HEIGHT - _BOTTOM - (HEIGHT - _TOP - _BOTTOM) * min(value, self.top) / self.top


def _svg(kind: str, title: str, summary: str, body: list[str]) -> Markup:
    label = escape(f"{title}: {summary}")
    return Markup(
        f'<svg class="chart" data-chart="{kind}" role="img" aria-label="{label}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _axes(frame: _Frame, last: date, top_label: str) -> list[str]:
    base = HEIGHT - _BOTTOM
    return [
        f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{WIDTH - _RIGHT}" y2="{base}"/>',
        f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">'
        f"{escape(top_label)}</text>",
        f'<text class="tick" x="{_LEFT - 4}" y="{base}" text-anchor="end">0</text>',
        f'<text class="tick" x="{_LEFT}" y="{HEIGHT - 6}">{frame.first:%b %d}</text>',
        f'<text class="tick" x="{WIDTH - _RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
        f"{last:%b %d}</text>",
    ]


def _points(frame: _Frame, pairs: Sequence[tuple[date, float]]) -> str:
    return " ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v in pairs)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def usage_chart(
    series: Mapping[date, float], metric: str, drop: tuple[date, date] | None
) -> Markup:
    """Daily usage of one metric, its baseline band, and the drop (from the usage signal)."""
    if not series:
        return _svg("usage", f"Daily usage ({metric})", "no usage on record", [])
    first, last = min(series), max(series)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    values = [(d, series.get(d, 0.0)) for d in days]
    band = baseline_band(series)
    top = max([v for _, v in values] + [b.high for b in band] + [1.0]) * 1.05
    frame = _Frame(first, last, top)
    body = _axes(frame, last, _short(top))
    if band:
        upper = [(b.day, b.high) for b in band]
        lower = [(b.day, b.low) for b in reversed(band)]
        body.append(f'<polygon class="band" points="{_points(frame, upper + lower)}"/>')
        middle = _points(frame, [(b.day, b.mid) for b in band])
        body.append(f'<polyline class="baseline" points="{middle}"/>')
    summary = f"{len(days)} days to {last:%Y-%m-%d}, last day {values[-1][1]:,.0f}"
    if drop is not None:
        start, end = max(drop[0], first), min(drop[1], last)
        x0, x1 = frame.x(start), max(frame.x(end), frame.x(start) + 2)
        body.append(
            f'<rect class="drop" x="{x0:.1f}" y="{_TOP}" width="{x1 - x0:.1f}" '
            f'height="{HEIGHT - _TOP - _BOTTOM}"><title>Drop since {start:%Y-%m-%d}</title></rect>'
        )
        body.append(
            f'<text class="drop-label" x="{x0 + 3:.1f}" y="{_TOP + 10}">drop since '
            f"{start:%b %d}</text>"
        )
        summary += f"; drop since {start:%Y-%m-%d}"
    body.append(f'<polyline class="line" points="{_points(frame, values)}"/>')
    return _svg("usage", f"Daily usage ({metric}) against its baseline", summary, body)


def score_chart(history: Sequence[tuple[date, float]], first: date, last: date) -> Markup:
    """The account's daily risk score from ``first`` to ``last`` (0 to 100%)."""
    if not history:
        return _svg("score", "Risk score", "no score recorded yet", [])
    frame = _Frame(first, last, 1.0)
    body = _axes(frame, last, "100%")
    mid = frame.y(0.5)
    body.append(
        f'<line class="grid" x1="{_LEFT}" y1="{mid:.1f}" x2="{WIDTH - _RIGHT}" y2="{mid:.1f}"/>'
    )
    body.append(f'<polyline class="line score" points="{_points(frame, history)}"/>')
    day, score = history[-1]
    body.append(f'<circle class="dot" cx="{frame.x(day):.1f}" cy="{frame.y(score):.1f}" r="3"/>')
    peak = max(s for _, s in history)
    summary = f"{len(history)} days; now {score:.0%}, highest {peak:.0%}"
    return _svg("score", f"Risk score, last {(last - first).days} days", summary, body)


def weekly(days: Sequence[date], first: date, last: date) -> list[tuple[date, int]]:
    """Counts per week (Monday first) from ``first``'s week to ``last``'s."""
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    counts = [0] * weeks
    for d in days:
        i = (d - start).days // 7
        if 0 <= i < weeks:
            counts[i] += 1
    return [(start + timedelta(weeks=i), n) for i, n in enumerate(counts)]


def tickets_chart(weeks: Sequence[tuple[date, int]]) -> Markup:
    """Tickets opened per week, as bars."""
    if not weeks or not any(n for _, n in weeks):
        return _svg("tickets", "Tickets per week", "no tickets on record", [])
    top = max(n for _, n in weeks) * 1.1
    frame = _Frame(weeks[0][0], weeks[-1][0] + timedelta(days=7), top)
    body = _axes(frame, weeks[-1][0] + timedelta(days=6), f"{max(n for _, n in weeks)}")
    width = max(2.0, frame.x(weeks[0][0] + timedelta(days=7)) - frame.x(weeks[0][0]) - 2)
    for start, n in weeks:
        x, y = frame.x(start), frame.y(n)
        body.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - _BOTTOM - y:.1f}">'
            f"<title>Week of {start:%Y-%m-%d}: {n}</title></rect>"
        )
    total = sum(n for _, n in weeks)
    summary = f"{total} tickets over {len(weeks)} weeks; last week {weeks[-1][1]}"
    return _svg("tickets", "Tickets opened per week", summary, body)
