"""A balance over time as an SVG step chart, drawn on the server (no script, no inline style).

Coordinates are computed in ``Decimal`` (28 digits: pixels, not money) and rounded to a tenth
of a pixel; each point carries a ``<title>`` so hovering shows its date and exact balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from markupsafe import Markup, escape

from ledger.money import fmt

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 110, 20, 20, 40  # margins for the axis labels
PIXEL = Decimal("0.1")


def _px(value: Decimal) -> str:
    return str(value.quantize(PIXEL, rounding=ROUND_HALF_EVEN))


def balance_chart(points: Sequence[tuple[date, Decimal]], label: str) -> Markup:
    """An ``<svg>`` of ``points`` (day, balance at its end), a step per day that moved."""
    if not points:
        return Markup('<p class="empty">No postings to chart.</p>')
    with localcontext() as ctx:
        ctx.prec = 28  # pixels, not money: the labels show the exact balances
        return _draw(points, label)


def _draw(points: Sequence[tuple[date, Decimal]], label: str) -> Markup:
    first, last = points[0][0], points[-1][0]
    span = Decimal(max((last - first).days, 1))
    values = [v for _, v in points] + [Decimal(0)]
    low, high = min(values), max(values)
    if low == high:
        high = low + 1
    plot_w, plot_h = Decimal(WIDTH - LEFT - RIGHT), Decimal(HEIGHT - TOP - BOTTOM)

    def x(day: date) -> Decimal:
        return LEFT + plot_w * Decimal((day - first).days) / span

    def y(value: Decimal) -> Decimal:
        return TOP + plot_h * (high - value) / (high - low)

    (day0, value0), *rest = points
    path = [f"M{_px(x(day0))},{_px(y(value0))}"]
    for day, value in rest:  # the balance held until the day it moved
        path += [f"H{_px(x(day))}", f"V{_px(y(value))}"]
    if not rest:
        path.append(f"H{_px(x(day0) + plot_w)}")
    dots = "".join(
        f'<circle cx="{_px(x(d))}" cy="{_px(y(v))}" r="3" class="dot">'
        f"<title>{d.isoformat()}: {escape(fmt(v))}</title></circle>"
        for d, v in points
    )
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    zero = _px(y(Decimal(0)))
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>"
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>'
        f'<line x1="{LEFT}" y1="{zero}" x2="{right}" y2="{zero}" class="zero"/>'
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{escape(fmt(high))}</text>'
        f'<text x="{LEFT - 6}" y="{bottom}" text-anchor="end">{escape(fmt(low))}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 12}">{first.isoformat()}</text>'
        f'<text x="{right}" y="{HEIGHT - 12}" text-anchor="end">{last.isoformat()}</text>'
        f'<path d="{" ".join(path)}" class="line" fill="none"/>'
        f"{dots}</svg>"
    )
