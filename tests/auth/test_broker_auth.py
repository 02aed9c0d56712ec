"""The embedded broker's hand-over runs the subscribing service's auth: a forged envelope
without a valid token never reaches the subscriber (gRPC over 127.0.0.1 between brokers)."""

from __future__ import annotations

import pytest

import micro
from micro.auth import Auth
from micro.auth.jwt import JWTVerifier
from micro.broker import Message
from micro.broker.embedded import DELIVER, EmbeddedBroker, Envelope, topic_service
from micro.codec import encode
from micro.registry import MemoryRegistry
from micro.status import Status
from tests.auth.kit import SECRET, hs256
from tests.runtime.echo_kit import EchoRequest
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(60)

PINGED = micro.Event("auth.pinged", EchoRequest)


async def test_a_forged_envelope_without_a_token_never_reaches_the_subscriber() -> None:
    got: list[str] = []
    calls: list[str] = []

    async def record(message: EchoRequest) -> None:
        got.append(message.text)

    async def seen(call: micro.HandlerCall, nxt: micro.HandlerNext) -> object:
        calls.append(call.method.name)  # the service's own middleware runs too
        return await nxt(call)

    async with MemoryRegistry() as registry:
        service = micro.Service(
            "billing",
            registry=registry,
            broker=EmbeddedBroker(registry),
            auth=Auth(JWTVerifier(secret=SECRET)),
            middleware=[seen],
        )
        service.subscribe(PINGED, record)
        async with service:
            (node,) = (await registry.get_service(topic_service(PINGED.topic)))[0].nodes
            envelope = Envelope(
                topic=PINGED.topic,
                data=encode(EchoRequest(text="forged"), EchoRequest),
                content_type="application/protobuf",
                subscription=node.id,
            )
            async with micro.Client(registry=registry, token="") as attacker:
                with pytest.raises(micro.Error) as info:
                    await attacker.unary(DELIVER, envelope, address=node.address, timeout=5)
                assert info.value.grpc_status is Status.UNAUTHENTICATED
                bad = hs256().token("mallory", ttl=-10)
                with pytest.raises(micro.Error) as info:
                    await attacker.unary(
                        DELIVER,
                        envelope,
                        address=node.address,
                        timeout=5,
                        metadata={"authorization": f"Bearer {bad}"},
                    )
                assert info.value.grpc_status is Status.UNAUTHENTICATED

            # a publisher without a token is turned away the same way
            anonymous = EmbeddedBroker(registry, token="")
            message = Message(PINGED.topic, encode(EchoRequest(text="anonymous"), EchoRequest))
            with pytest.raises(micro.Error) as info:
                await anonymous.deliver(message)
            assert info.value.grpc_status is Status.UNAUTHENTICATED
            await anonymous.close()

            # one with a valid token delivers
            member = EmbeddedBroker(registry, token=hs256().token("shop", type="service"))
            assert (
                await member.deliver(
                    Message(PINGED.topic, encode(EchoRequest(text="ok"), EchoRequest))
                )
                == 1
            )
            await member.close()
            await eventually(lambda: got == ["ok"], what="the authenticated delivery")
            assert calls.count("Broker.Deliver") == 1  # only the authenticated one got past auth
