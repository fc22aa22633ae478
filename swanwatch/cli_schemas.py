"""The JSON Schema of each command's ``--json`` output (and of its lists off a terminal).

The keys are stable: a key is added, never renamed or dropped, without a note in the
changelog. Records the store keeps (alerts, signals, runs, ...) are described by their
models; the rest are written out here. docs/cli.md shows each shape; a test holds every
command's output against its schema. ``schema_of("alerts list")`` gives one.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_NUMBER_OR_NULL: Schema = {"type": ["number", "null"]}
_STRING_OR_NULL: Schema = {"type": ["string", "null"]}


def _strict(schema: Any) -> Any:
    """Every object with listed properties: each required, no other key."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        props = out.get("properties")
        if out.get("type") == "object" and isinstance(props, dict) and props:
            out["required"] = sorted(props)
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _obj(**props: Schema) -> Schema:
    return {"type": "object", "properties": props}


def _list(item: Schema) -> Schema:
    """An array of ``item``; the definitions it refers to move to the top, where "#/$defs"
    points."""
    item = dict(item)
    defs = item.pop("$defs", None)
    return {"type": "array", "items": item, **({"$defs": defs} if defs else {})}


def _model(name: str, extra: dict[str, Schema] | None = None) -> Schema:
    """The serialised form of a record of ``swanwatch.model``, with ``extra`` keys."""
    from swanwatch import model

    cls = getattr(model, name)
    schema: Schema = cls.model_json_schema(mode="serialization")
    if extra:
        schema["properties"].update(extra)
    return schema


def _watchers() -> Schema:
    option = _obj(
        type={"type": "string"},
        required={"type": "boolean"},
        default={},
        description={"type": "string"},
    )
    item = _obj(
        name={"type": "string"},
        distribution={"type": "string"},
        historical={"type": "boolean"},
        description={"type": "string"},
        options={"type": "object", "additionalProperties": option},
    )
    # A plugin that is installed but cannot be loaded is listed with why.
    broken = _obj(name={"type": "string"}, error={"type": "string"})
    return _list({"oneOf": [item, broken]})


def _rules() -> Schema:
    return _list(
        _obj(
            rule={"type": "string"},
            fired={"type": "integer"},
            acted_on={"type": "integer"},
            useful={"type": "integer"},
            noise={"type": "integer"},
            median_lead_days=_NUMBER_OR_NULL,
        )
    )


def _risk() -> Schema:
    line = _obj(
        account={"type": "string"},
        name={"type": "string"},
        group=_STRING_OR_NULL,
        owner=_STRING_OR_NULL,
        segment=_STRING_OR_NULL,
        arr={"type": "number"},
        score={"type": "number"},
        revenue_at_risk={"type": "number"},
        severity={"type": "string"},
        renewal_date=_STRING_OR_NULL,
        rules={"type": "string"},
    )
    total = _obj(
        group=_STRING_OR_NULL,
        accounts={"type": "integer"},
        arr={"type": "number"},
        revenue_at_risk={"type": "number"},
    )
    return _obj(
        by={"enum": ["all", "owner", "segment", "rule"]},
        accounts=_list(line),
        totals=_list(total),
        total_revenue_at_risk={"type": "number"},
    )


def _routes() -> Schema:
    target = _obj(
        channel={"type": "string"},
        route={"type": "string"},
        format={"type": "string"},
        timezone={"type": "string"},
        due_at={"type": "string", "format": "date-time"},
        held=_STRING_OR_NULL,
        group={"oneOf": [{"type": "null"}, _obj(kind={"type": "string"}, key={"type": "string"})]},
        fallback=_STRING_OR_NULL,
        send_resolved={"type": "boolean"},
    )
    alert = _obj(
        account={"type": "string"},
        rule={"type": "string"},
        severity={"type": "string"},
        kinds=_list({"type": "string"}),
        owner=_STRING_OR_NULL,
        segment=_STRING_OR_NULL,
        tags=_list({"type": "string"}),
    )
    return _obj(alert=alert, targets=_list(target), trace=_list({"type": "string"}))


def _domain() -> Schema:
    return _obj(
        domain={"type": "string"},
        expires_at=_STRING_OR_NULL,
        registrar=_STRING_OR_NULL,
        status=_list({"type": "string"}),
        source=_STRING_OR_NULL,
        server=_STRING_OR_NULL,
        error=_STRING_OR_NULL,
    )


def _users() -> Schema:
    return _list(
        _obj(
            name={"type": "string"},
            owner={"type": "string"},
            created_at={"type": "string", "format": "date-time"},
        )
    )


def output_schemas() -> dict[str, Schema]:
    """Each command's JSON output schema, by the command's words."""
    fingerprint = {"fingerprint": {"type": "string"}}
    found: dict[str, Schema] = {
        "watchers list": _watchers(),
        "watchers runs": _list(_model("WatcherRun")),
        "signals list": _list(_model("StoredSignal", fingerprint)),
        "unknowns list": _list(_model("Unknown")),
        "sources list": _list(_model("SourceHealth")),
        "alerts list": _list(_model("Alert", {"status": {"type": "string"}})),
        "alerts show": _model("Alert"),
        "silences list": _list(_model("Silence")),
        "rules stats": _rules(),
        "risk report": _risk(),
        "routes test": _routes(),
        "outbox list": _list(_model("Notification")),
        "domain lookup": _domain(),
        "users list": _users(),
    }
    return {name: _strict(schema) for name, schema in found.items()}


def schema_of(command: str) -> Schema:
    """The output schema of ``command`` ("alerts list"); KeyError for one without."""
    return output_schemas()[command]
