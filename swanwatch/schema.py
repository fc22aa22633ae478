"""The config file's JSON Schema, with every installed plugin's options: for editors and CI."""

from __future__ import annotations

from typing import Any

from swanwatch import plugins
from swanwatch.errors import PluginError
from swanwatch.settings import Config


def _plugin_branches(group: str) -> list[dict[str, Any]]:
    """One if/then per installed plugin: when `type` is its name, `options` is its Options."""
    branches = []
    for name in sorted(plugins.available(group)):
        try:
            cls = plugins.load(group, name)
        except PluginError:
            continue  # a broken plugin is reported by `watchers list`, not here
        branches.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"properties": {"options": cls.Options.model_json_schema()}},
            }
        )
    return branches


def config_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a Swanwatch config file."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Swanwatch configuration"
    schema["properties"].pop("base_dir", None)
    defs = schema["$defs"]
    watcher_types = sorted(plugins.available(plugins.WATCHERS))
    source_types = sorted(plugins.available(plugins.SOURCES))
    defs["WatcherConfig"]["properties"]["type"]["examples"] = watcher_types
    defs["WatcherConfig"]["allOf"] = _plugin_branches(plugins.WATCHERS)
    defs["PluginConfig"]["properties"]["type"]["examples"] = source_types
    defs["PluginConfig"]["allOf"] = _plugin_branches(plugins.SOURCES)
    return schema
