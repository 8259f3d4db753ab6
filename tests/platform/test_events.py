"""Events between services: in-process, and across processes through Redis."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from concilium.platform.events import EventBus, RedisEventBus

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_in_process_delivery_survives_a_failing_handler():
    bus = EventBus()
    seen = []

    def broken(topic, payload):
        raise RuntimeError("handler bug")

    bus.subscribe("study.received", broken)
    bus.subscribe("study.received", lambda t, p: seen.append((t, p)))
    bus.subscribe("*", lambda t, p: seen.append(("any", p)))
    bus.publish("study.received", {"study": "1.2.3"})
    bus.publish("other", {"x": 1})
    assert seen == [
        ("study.received", {"study": "1.2.3"}),
        ("any", {"study": "1.2.3"}),
        ("any", {"x": 1}),
    ]


def test_redis_bus_reaches_another_process_subscriber():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    topic = f"test.{uuid.uuid4().hex}"
    publisher, subscriber = RedisEventBus(REDIS_URL), RedisEventBus(REDIS_URL)
    received = threading.Event()
    payloads = []

    def on_event(t, p):
        payloads.append((t, p))
        received.set()

    subscriber.subscribe(topic, on_event)
    try:
        for _ in range(50):  # the subscription is asynchronous: publish until it is live
            publisher.publish(topic, {"n": 1})
            if received.wait(0.1):
                break
        assert payloads and payloads[0] == (topic, {"n": 1})
    finally:
        publisher.close()
        subscriber.close()
