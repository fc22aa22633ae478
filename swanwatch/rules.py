"""The rule language, pure types: what a rule in a rule file may say, and how it is checked.

A rule names a compound risk: which signal kinds together (``all_of``, ``any_of``,
``at_least`` N ``of``), within a window, on which accounts (renewal, ARR, segment, tags),
which signals count (``min_strength``, ``where`` on their evidence), how severe, and the
play. ``raise`` steps lift the severity with the stake (ARR, days to renewal) and the
strength (the account's score). :data:`DEFAULT_PHRASES` names signals in a few words, for
the catch-all rule's title. No YAML here; ``swanwatch.settings`` holds the other sections.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from swanwatch.durations import Duration
from swanwatch.model import Severity


class Section(BaseModel):
    """A config section: frozen, and an unknown key is an error (a typo never passes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Between(Section):
    """A number in a signal's evidence within bounds (either may be left open)."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Between:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least, at_most or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} is above at_most {self.at_most}")
        return self

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        low = self.at_least is None or value >= self.at_least
        return low and (self.at_most is None or value <= self.at_most)


class RaiseStep(Section):
    """A step up in severity: ``to`` when every condition given holds for the account."""

    to: Severity
    arr_at_least: float | None = Field(None, ge=0, description="The account's ARR.")
    renewal_within_days: int | None = Field(
        None, ge=0, description="Days to the account's renewal (a past renewal counts)."
    )
    score_at_least: float | None = Field(
        None, ge=0, le=1, description="The account's risk score (the strength of it all)."
    )

    @model_validator(mode="after")
    def _has_condition(self) -> RaiseStep:
        if (self.arr_at_least, self.renewal_within_days, self.score_at_least) == (None,) * 3:
            raise ValueError(
                "a raise step needs arr_at_least, renewal_within_days or score_at_least"
            )
        return self

    def holds(self, arr: float, days_to_renewal: int | None, score: float) -> bool:
        if self.arr_at_least is not None and arr < self.arr_at_least:
            return False
        if self.renewal_within_days is not None and (
            days_to_renewal is None or days_to_renewal > self.renewal_within_days
        ):
            return False
        return self.score_at_least is None or score >= self.score_at_least


def raised(
    base: Severity,
    steps: tuple[RaiseStep, ...],
    arr: float,
    days_to_renewal: int | None,
    score: float,
) -> Severity:
    """The severity after every step that holds: the highest of ``base`` and theirs."""
    out = base
    for step in steps:
        if step.to.rank > out.rank and step.holds(arr, days_to_renewal, score):
            out = step.to
    return out


class Rule(Section):
    """A compound rule: which signal kinds, together, within a window, make an alert."""

    name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    severity: Severity = Severity.WARNING
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    at_least: int | None = Field(None, ge=1, description="At least N distinct kinds.")
    of: tuple[str, ...] = Field((), description="Kinds counted by at_least; empty = any.")
    within: Duration = timedelta(days=30)
    min_score: float = Field(0.0, ge=0, le=1, description="Score of the matched signals.")
    min_strength: float = Field(0.0, ge=0, le=1, description="Ignore weaker signals.")
    where: dict[str, Between] = Field(
        default_factory=dict,
        description="Only signals whose evidence has these numbers in range count, e.g. "
        "{days_left: {at_most: 14}}.",
    )
    renewal_within_days: int | None = Field(None, ge=0)
    arr_at_least: float | None = Field(None, ge=0)
    segments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    play: tuple[str, ...] = ()
    raise_: tuple[RaiseStep, ...] = Field(
        (),
        alias="raise",
        description="Steps up in severity with the stake: each {to, arr_at_least, "
        "renewal_within_days, score_at_least}; the highest step that holds wins.",
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        if not (self.all_of or self.any_of or self.at_least):
            raise ValueError("a rule needs at least one of all_of, any_of or at_least")
        for i, step in enumerate(self.raise_):
            if step.to.rank <= self.severity.rank:
                raise ValueError(
                    f"raise[{i}].to is {step.to}, not above the rule's severity "
                    f"{self.severity}: a step can only raise it"
                )
        return self


#: A few words per signal, for the catch-all rule's title: by ``kind:topic`` (the last
#: part of a signal's key) first, then by kind. Others read as their kind, spaced.
DEFAULT_PHRASES = {
    "usage_drop": "usage falling",
    "support_spike": "support spiking",
    "champion_departure": "champion left",
    "renewal_lapse": "renewal with nothing in motion",
    "renewal_lapse:overdue": "invoice overdue",
    "renewal_lapse:payment_failed": "payment failed",
    "domain_expiry": "domain lapsing",
    "tls_expiry": "certificate lapsing",
}

#: The catch-all rule's steps up by default: the stake and the strength make the severity.
DEFAULT_SCORE_RAISE = (
    RaiseStep(to=Severity.HIGH, arr_at_least=100_000),
    RaiseStep(to=Severity.HIGH, renewal_within_days=60),
    RaiseStep(to=Severity.HIGH, score_at_least=0.8),
    RaiseStep(to=Severity.CRITICAL, arr_at_least=250_000, score_at_least=0.6),
)
