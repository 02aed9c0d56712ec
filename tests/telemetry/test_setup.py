"""How tracing turns on in a fresh process: OTEL_* variables, or a global SDK provider
the application (or opentelemetry-instrument) set first; the service name default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.cluster import ROOT

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    import micro
    from micro.registry import MemoryRegistry
    from tests.runtime.echo_kit import ECHO_SPEC, Echo, EchoClient, EchoRequest

    if sys.argv[1] == "global":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

    async def main():
        service = micro.Service("probe", registry=MemoryRegistry())
        service.handle(ECHO_SPEC, Echo())
        async with service:
            await EchoClient(address=service.address).echo(EchoRequest(text="x"))

    asyncio.run(main())
    from micro.telemetry import tracing
    if sys.argv[1] == "global":
        print("RESULT", json.dumps(sorted(s.kind.name for s in exporter.get_finished_spans())))
    else:
        print("RESULT", json.dumps([tracing.enabled()]), flush=True)
    """
)


def probe(mode: str, **env: str) -> list[object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    result: list[object] = json.loads(line.removeprefix("RESULT "))
    return result


def test_a_global_sdk_provider_set_first_is_used_without_any_variable() -> None:
    assert probe("global") == ["CLIENT", "SERVER"]


def test_variables_turn_tracing_on_and_none_keeps_it_off() -> None:
    assert probe("env") == [False]
    assert probe("env", OTEL_TRACES_EXPORTER="console") == [True]
    assert probe("env", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") == [True]
    assert probe("env", OTEL_EXPORTER_OTLP_ENDPOINT="x", OTEL_TRACES_EXPORTER="none") == [False]
    assert probe("env", OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true") == [False]


def test_the_service_name_defaults_to_the_micro_service() -> None:
    def console(**env: str) -> set[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        out = subprocess.run(
            [sys.executable, "-c", PROBE, "env"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**clean, "PYTHONPATH": str(ROOT), "OTEL_TRACES_EXPORTER": "console", **env},
            timeout=60,
        )
        decoder, names = json.JSONDecoder(), set()
        text = "\n".join(x for x in out.stdout.splitlines() if not x.startswith("RESULT "))
        index = text.find("{")
        while index != -1:
            span, end = decoder.raw_decode(text, index)
            names.add(span["resource"]["attributes"]["service.name"])
            index = text.find("{", end)
        return names

    assert console() == {"probe"}
    assert console(OTEL_SERVICE_NAME="orders") == {"orders"}
