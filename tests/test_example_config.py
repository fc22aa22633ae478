"""config/swanwatch.example.yaml documents every key: its keys are the schema's, section by
section (list and mapping entries together, the routing tree as one), no more, no fewer."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from swanwatch.config import Config

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "swanwatch.example.yaml"


def _model(annotation: object) -> tuple[bool, type[BaseModel]] | None:
    """(many, the model) for a model, an optional one, or a list or mapping of them."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False, annotation
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, dict) and args:
        found = _model(args[-1])
        return (True, found[1]) if found else None
    for arg in args:  # X | None
        found = _model(arg)
        if found:
            return found
    return None


def _keys(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items() if not f.exclude}


def _gaps(model: type[BaseModel], entries: list[Any], path: str) -> list[str]:
    """What the example's ``entries`` (all of one model) lack or add, and below them."""
    given = set().union(*(set(e) for e in entries if isinstance(e, dict)))
    out = [f"{path or '(top)'}: missing {k}" for k in sorted(_keys(model) - given)]
    out += [f"{path or '(top)'}: not in the schema: {k}" for k in sorted(given - _keys(model))]
    for name, field in model.model_fields.items():
        key = field.alias or name
        found = _model(field.annotation)
        if found is None or found[1] is model:
            continue
        many, sub = found
        values = [e[key] for e in entries if isinstance(e, dict) and e.get(key) is not None]
        if many:
            values = [v for val in values for v in (val.values() if isinstance(val, dict) else val)]
        if sub.__name__ == "RouteConfig":
            values = [node for value in values for node in _tree(value)]
        if values:
            out += _gaps(sub, values, f"{path}.{key}".lstrip("."))
    return out


def _tree(route: Any) -> list[Any]:
    children = route.get("routes") or [] if isinstance(route, dict) else []
    return [route, *(node for child in children for node in _tree(child))]


def test_the_example_config_has_every_key_of_the_schema_and_no_other() -> None:
    assert _gaps(Config, [yaml.safe_load(EXAMPLE.read_text())], "") == []


def test_a_missing_key_is_noticed() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["daemon"]["shards"]
    assert _gaps(Config, [data], "") == ["daemon: missing shards"]
