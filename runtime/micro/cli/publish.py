"""`micro publish TOPIC '{json}'`: publish one event through the broker of the environment.

The payload is sent as `application/json`; typed subscribers (`micro.Event`) decode it
with the proto3 JSON mapping of their message type, as they do for any JSON event.
"""

from __future__ import annotations

import json
from typing import Any

import click

from micro import registry as registry_mod
from micro.broker import JSON, BrokerError, Message, check_topic
from micro.broker import from_env as broker_from_env
from micro.broker.embedded import EmbeddedBroker
from micro.cli.exits import InvalidField, Unreachable, UsageFailure
from micro.cli.ops import (
    emit,
    options_from,
    parse_json,
    parse_metadata,
    registry_options,
    run,
    token_option,
)

__all__ = ["publish"]


@click.command("publish")
@click.argument("topic")
@click.argument("message")
@click.option(
    "--broker",
    envvar="MICRO_BROKER",
    help="Broker backend (embedded, nats). Env: MICRO_BROKER; default embedded.",
)
@click.option(
    "--broker-address",
    envvar="MICRO_BROKER_ADDRESS",
    help="URL of a broker server (nats). Env: MICRO_BROKER_ADDRESS.",
)
@click.option("--durable", is_flag=True, help="Publish on the broker's durable path.")
@click.option("--metadata", "-m", multiple=True, help="KEY=VALUE event metadata (repeatable).")
@token_option
@registry_options
def publish(
    topic: str,
    message: str,
    broker: str | None,
    broker_address: str | None,
    durable: bool,
    metadata: tuple[str, ...],
    token: str | None,
    **kwargs: Any,
) -> None:
    """Publish the JSON MESSAGE on TOPIC.

    \b
    micro publish shop.order.placed '{"id": "42"}'
    """
    options = options_from(kwargs)
    try:
        check_topic(topic)
    except BrokerError as exc:
        raise UsageFailure(str(exc)) from None
    data = parse_json(message)
    if not isinstance(data, dict):
        raise InvalidField(f"an event must be a JSON object, got {type(data).__name__}")
    pairs = dict(parse_metadata(metadata))
    environ = options.environ()
    for key, value in (
        ("MICRO_BROKER", broker),
        ("MICRO_BROKER_ADDRESS", broker_address),
        ("MICRO_TOKEN", token),
    ):
        if value is not None:
            environ[key] = value
    try:
        chosen = broker_from_env(environ)
    except (ValueError, ImportError) as exc:
        raise UsageFailure(str(exc)) from None
    registry = options.open_registry()

    async def main() -> int | None:
        registry_mod.set_default(registry)  # the embedded broker finds subscribers there
        event = Message(
            topic=topic,
            data=json.dumps(data, separators=(",", ":")).encode(),
            content_type=JSON,
            metadata=pairs,
        )
        try:
            if isinstance(chosen, EmbeddedBroker):  # it knows who took the message
                return await chosen.deliver(event, durable=durable)
            await chosen.publish(event, durable=durable)
            return None
        except BrokerError as exc:
            raise Unreachable(f"cannot publish to {topic}: {exc}") from None
        finally:
            await chosen.close()
            await registry.close()

    taken = run(main())
    emit(options, f"published to {topic}", {"topic": topic, "published": True})
    if taken == 0:
        click.echo(
            f"note: no subscriber of {topic} was listening; the embedded broker dropped it",
            err=True,
        )
