"""Whether a queued alert notice is still worth sending when its turn comes.

A notice can wait hours in the outbox: held over quiet hours, for the morning's digest, or
for its group. Meanwhile a person may take its alert in hand, or the alert move on. As
Alertmanager checks its silences when it flushes a group, the sender checks the alert as
it stands just before the send, and withdraws the notice (not sent; the outbox says why)
when telling it would be noise: the alert is resolved, or another episode of it began; a
person acknowledged or snoozed it after it was told as firing; or a silence now mutes it.
What a notice says of an alert still firing as told goes out as queued.
"""

from __future__ import annotations

from swanwatch.model import Alert, AlertNotice, AlertState, NoticeEvent

#: The news a person's action or a silence makes stale (a resolution is told whatever).
_NEWS = frozenset(
    {NoticeEvent.FIRING, NoticeEvent.ESCALATED, NoticeEvent.REPEAT, NoticeEvent.REMINDER}
)
_IN_HAND = frozenset({AlertState.ACKNOWLEDGED, AlertState.SNOOZED})
_ACTIONS = frozenset({"ack", "snooze", "resolve"})


def stale(notice: AlertNotice, now: Alert | None) -> str | None:
    """Why ``notice`` is not to be sent, its alert being ``now``; None when it is to be
    sent, as when its alert is not on record (nothing says the notice is stale: it goes)."""
    if notice.event not in _NEWS or now is None:
        return None
    told = notice.alert
    if now.episode != told.episode:
        return f"withdrawn: the alert's episode {told.episode} ended (now {now.episode})"
    # acted_by: "<action>:<who>" for a person's action (ack:ann, resolve:link:bob@x.com)
    action, _, who = (now.acted_by or "").partition(":")
    by = f" by {who}" if who and action in _ACTIONS else ""
    at = f" at {now.updated_at:%Y-%m-%d %H:%M} UTC"
    if now.state == AlertState.RESOLVED:
        return f"withdrawn: the alert was resolved{by}{at}, before this was sent"
    if now.state in _IN_HAND and told.state not in _IN_HAND:
        return f"withdrawn: the alert was {now.state.value}{by}{at}, before this was sent"
    if now.muted_by and not told.muted_by:
        return f"withdrawn: the alert is muted ({now.muted_by}) since it was queued"
    return None
