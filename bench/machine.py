"""What a result table needs to be read later: the machine, the date, the package versions."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata

PACKAGES = (
    "micro-runtime",
    "protoc-gen-micro",
    "betterproto2",
    "betterproto2-compiler",
    "grpclib",
    "grpcio",
    "grpcio-tools",
    "protobuf",
    "black",
    "jinja2",
    "googleapis-common-protos",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def describe() -> list[str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), {_memory()} RAM, "
        f"{platform.system()} {platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- packages: {', '.join(versions)}",
    ]
