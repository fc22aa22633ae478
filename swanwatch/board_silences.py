"""The risk board's silences page (``/board/silences``): the silences on record, a form to
add one (matchers on account, rule, owner and segment, a reason and an expiry), and a
button to expire one now. Through :mod:`swanwatch.actions`, as the person signed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from swanwatch.alerts import SILENCE_FIELDS
from swanwatch.board_book import TZ_COOKIE, Clocks
from swanwatch.errors import ActionError, InvalidAction, SilenceNotFound

if TYPE_CHECKING:
    from swanwatch.board import Board

#: The lengths the form offers, in days.
LENGTHS = {"1": "1 day", "7": "1 week", "30": "30 days"}
#: The longest silence the board adds.
MAX_SILENCE = timedelta(days=365)


def silence_length(form: dict[str, str], zone: str | None, now: datetime) -> timedelta:
    """How long the form asks to silence: a preset length, or until a date (the start of
    that day in the viewer's zone)."""
    until = form.get("until", "").strip()
    if until:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            raise InvalidAction(f"until {until!r}: give a date as YYYY-MM-DD") from None
        end = datetime.combine(day, time(0, 0), tzinfo=Clocks.of(now, zone).zone)
        length = end.astimezone(UTC) - now
    else:
        days = form.get("days", "")
        if days not in LENGTHS:
            raise InvalidAction("choose how long the silence lasts, or a date it ends")
        length = timedelta(days=int(days))
    if length <= timedelta(0):
        raise InvalidAction(f"until {until}: that day has begun already; pick a later one")
    if length > MAX_SILENCE:
        raise InvalidAction("a silence lasts at most a year")
    return length


class SilencePages:
    """The silences page of one board."""

    def __init__(self, board: Board) -> None:
        self.board = board

    async def page(self, request: Request, *, error: str = "") -> Response:
        board = self.board
        person = await board.viewer(request)
        if isinstance(person, Response):
            return person
        now = board.clock.now()
        silences = await asyncio.to_thread(board.store.silences)
        active = [s for s in silences if s.starts_at <= now < s.ends_at]
        ended = [s for s in silences if s.ends_at <= now][-20:]
        done = request.query_params.get("done", "")
        return board.render(
            "board_silences.html.j2",
            400 if error else 200,
            active=active,
            ended=list(reversed(ended)),
            fields=SILENCE_FIELDS,
            lengths=LENGTHS,
            clocks=board.clocks(request),
            status={"added": "Silence added.", "expired": "Silence expired."}.get(done, ""),
            error=error,
            **board.common(request, person, await board.csrf(request, person)),
        )

    async def add(self, request: Request) -> Response:
        board = self.board
        form = await board.form(request)
        person = await board.acting(request, form)
        if isinstance(person, Response):
            return person
        matchers = {f: form.get(f, "").strip() for f in SILENCE_FIELDS if form.get(f, "").strip()}
        try:
            length = silence_length(form, request.cookies.get(TZ_COOKIE), board.clock.now())
            await asyncio.to_thread(
                board.actions.silence,
                matchers,
                length,
                reason=form.get("reason", ""),
                by=person.name,
            )
        except ActionError as exc:
            return await self.page(request, error=f"Nothing added: {exc}.")
        board.forget_book()
        return board.redirect("/silences", "done=added")

    async def expire(self, request: Request) -> Response:
        board = self.board
        form = await board.form(request)
        person = await board.acting(request, form)
        if isinstance(person, Response):
            return person
        try:
            await asyncio.to_thread(
                board.actions.expire_silence, request.path_params["silence_id"], by=person.name
            )
        except SilenceNotFound as exc:
            return board.message("Nothing done", str(exc), 404, link=board.url("/silences"))
        board.forget_book()
        return board.redirect("/silences", "done=expired")
