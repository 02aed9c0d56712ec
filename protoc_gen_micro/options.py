"""Plugin parameters (`--micro_opt=...`), parsed strictly: an unknown one is an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PathsMode = Literal["import", "source_relative"]
MessagesBackend = Literal["betterproto2", "protobuf"]
# `module`: specs, clients, handlers; `specs`: `_FILES`, the Method constants and the
# ServiceSpec only, importing nothing of the runtime but `micro.spec` (the runtime's own
# built-in services, which `import micro` itself imports, are generated so).
OutputMode = Literal["module", "specs"]

KNOWN = {
    "paths": ("import", "source_relative"),
    "messages": ("betterproto2", "protobuf"),
    "output": ("module", "specs"),
}


class OptionError(ValueError):
    pass


@dataclass(frozen=True)
class Options:
    paths: PathsMode = "import"
    messages: MessagesBackend = "betterproto2"
    output: OutputMode = "module"


def parse_options(parameter: str) -> Options:
    values: dict[str, str] = {}
    for raw in parameter.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if key not in KNOWN:
            known = ", ".join(sorted(KNOWN))
            raise OptionError(f"unknown option {key!r} (known options: {known})")
        if not sep:
            raise OptionError(f"option {key!r} needs a value: {key}=VALUE")
        value = value.strip()
        if value not in KNOWN[key]:
            allowed = ", ".join(KNOWN[key])
            raise OptionError(f"option {key}={value!r} is not one of: {allowed}")
        if key in values and values[key] != value:
            raise OptionError(f"option {key!r} given twice with different values")
        values[key] = value
    paths: PathsMode = "source_relative" if values.get("paths") == "source_relative" else "import"
    messages: MessagesBackend = (
        "protobuf" if values.get("messages") == "protobuf" else "betterproto2"
    )
    output: OutputMode = "specs" if values.get("output") == "specs" else "module"
    return Options(paths=paths, messages=messages, output=output)
