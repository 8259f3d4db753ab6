"""Async client of the Janus API and Admin API over the HTTP transport.

Follows the "RESTful, HTTP/HTTPS" transport and "Admin/Monitor API" chapters of the Janus 1.x
documentation: a session is created with ``POST /janus``, a plugin handle with
``POST /janus/<session>`` (``attach``), plugin requests with ``POST /janus/<session>/<handle>``
(``message``) and asynchronous events are read with a long poll ``GET /janus/<session>``.
Synchronous plugin requests (VideoRoom ``create``/``destroy``/``list``/``allowed``, Streaming
``create``/``destroy``/``list``) answer in the ``success`` reply; asynchronous ones (``join``)
answer ``ack`` first and their result arrives as an ``event`` carrying the same transaction.

Stored-token authentication is used (``token_auth = true`` without a signing secret): every
Janus API request carries a ``token`` that Concilium added with the Admin API ``add_token``
request, optionally restricted to a list of plugins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = [
    "STREAMING",
    "VIDEOROOM",
    "JanusAdmin",
    "JanusError",
    "JanusHandle",
    "JanusPluginError",
    "JanusSession",
    "JanusUnauthorized",
    "JanusUnreachable",
]

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
"""Package name of the VideoRoom (SFU) plugin."""
STREAMING = "janus.plugin.streaming"
"""Package name of the Streaming plugin."""

JSON = dict[str, Any]


class JanusError(Exception):
    """Janus answered a request with an ``error`` (Janus API error codes, ``apierror.h``)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusUnauthorized(JanusError):
    """Error 403 (token or secret missing, unknown or revoked) or 405 (plugin not allowed)."""


class JanusPluginError(JanusError):
    """A plugin refused a request (``error_code`` in the plugin data, e.g. VideoRoom 426)."""


class JanusUnreachable(JanusError):
    """The HTTP transport did not answer (Janus stopped, restarting or not started)."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


def _transaction() -> str:
    return secrets.token_hex(8)


async def _post(http: httpx.AsyncClient, url: str, body: Mapping[str, Any]) -> JSON:
    try:
        response = await http.post(url, json=dict(body))
    except httpx.TransportError as exc:
        raise JanusUnreachable(f"{url}: {exc!r}") from exc
    return _check(response)


def _check(response: httpx.Response) -> JSON:
    if response.status_code != 200:
        raise JanusError(response.status_code, f"HTTP {response.status_code} from Janus")
    try:
        reply = response.json()
    except ValueError as exc:
        raise JanusError(response.status_code, "Janus answered with invalid JSON") from exc
    if not isinstance(reply, dict):
        raise JanusError(response.status_code, "Janus answered with a non-object JSON value")
    if reply.get("janus") == "error":
        error = reply.get("error", {})
        code = int(error.get("code", 0))
        reason = str(error.get("reason", "unknown error"))
        if code in (403, 405):
            raise JanusUnauthorized(code, reason)
        raise JanusError(code, reason)
    return reply


def _plugin_data(reply: JSON) -> JSON:
    """Plugin payload of a ``success`` or ``event`` message; raises on a plugin error."""
    data: JSON = reply.get("plugindata", {}).get("data", {})
    if "error_code" in data or "error" in data:
        raise JanusPluginError(int(data.get("error_code", 0)), str(data.get("error", "")))
    return data


@dataclass
class JanusAdmin:
    """Admin API client: token management and liveness (Admin/Monitor API chapter).

    The admin secret is only ever sent to the loopback Admin API port.
    """

    http: httpx.AsyncClient
    """HTTP client used for the requests."""
    admin_url: str
    """Base URL of the Admin API, e.g. ``http://127.0.0.1:7288/admin``."""
    admin_secret: str = field(repr=False)
    """Value of ``admin_secret`` in janus.jcfg."""

    async def request(self, verb: str, **fields: Any) -> JSON:
        """Send one Admin API request and return the ``success`` reply."""
        body = {"janus": verb, "transaction": _transaction(), "admin_secret": self.admin_secret}
        body.update(fields)
        return await _post(self.http, self.admin_url, body)

    async def ping(self) -> bool:
        """True if the Admin API answers ``pong``."""
        try:
            reply = await self.request("ping")
        except JanusError:
            return False
        return reply.get("janus") == "pong"

    async def add_token(self, token: str, plugins: tuple[str, ...] = ()) -> None:
        """Allow ``token`` on the Janus API, restricted to ``plugins`` when given."""
        fields: JSON = {"token": token}
        if plugins:
            fields["plugins"] = list(plugins)
        await self.request("add_token", **fields)

    async def remove_token(self, token: str) -> None:
        """Revoke ``token``; a token Janus does not know (e.g. after a restart) is fine.

        Janus checks stored tokens on every Janus API request, so sessions opened with the
        token fail at their next request; media already flowing is not cut by this alone.
        """
        try:
            await self.request("remove_token", token=token)
        except JanusUnreachable:
            raise
        except JanusError:
            # Janus answers a generic 490 for an unknown token; only its absence matters.
            if token in await self.list_tokens():
                raise

    async def list_sessions(self) -> list[int]:
        """Ids of the Janus API sessions currently open."""
        reply = await self.request("list_sessions")
        return [int(s) for s in reply.get("sessions", [])]

    async def list_tokens(self) -> dict[str, list[str]]:
        """Every stored token with the plugins it may attach to."""
        reply = await self.request("list_tokens")
        tokens = reply.get("data", {}).get("tokens", [])
        return {
            str(item["token"]): [str(p) for p in item.get("allowed_plugins", [])] for item in tokens
        }


class JanusSession:
    """One Janus API session: handles, keepalives and the event long poll.

    Use as an async context manager; the session is destroyed on exit. A session that only
    sends synchronous requests (the control plane) can do without the long poll
    (``poll_events=False``); the keepalives alone then keep it from timing out.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        token: str,
        *,
        keepalive_interval: float = 25.0,
        poll_events: bool = True,
    ) -> None:
        if keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        self.poll_events = poll_events
        self.http = http
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.keepalive_interval = keepalive_interval
        self.session_id: int | None = None
        self._pending: dict[str, asyncio.Future[JSON]] = {}
        self.events: asyncio.Queue[JSON] = asyncio.Queue(maxsize=1000)
        """Events not answering a pending request (e.g. ``publishers`` notifications)."""
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self.create()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def token(self) -> str:
        """The stored token this session was opened with (never sent to a browser)."""
        return self._token

    @property
    def url(self) -> str:
        """URL of this session's endpoint."""
        if self.session_id is None:
            raise RuntimeError("session not created")
        return f"{self.api_url}/{self.session_id}"

    async def _send(self, url: str, verb: str, **fields: Any) -> JSON:
        body: JSON = {"janus": verb, "transaction": _transaction(), "token": self._token}
        body.update(fields)
        return await _post(self.http, url, body)

    async def create(self) -> None:
        """Create the session (``create``) and start keepalive and event polling."""
        reply = await self._send(self.api_url, "create")
        self.session_id = int(reply["data"]["id"])
        self._tasks = [
            asyncio.create_task(self._keepalive_loop(), name=f"janus-keepalive-{self.session_id}")
        ]
        if self.poll_events:
            self._tasks.append(
                asyncio.create_task(self._poll_loop(), name=f"janus-poll-{self.session_id}")
            )

    async def keepalive(self) -> None:
        """Tell Janus the session is alive (``keepalive``), resetting its session timeout."""
        await self._send(self.url, "keepalive")

    async def attach(self, plugin: str) -> JanusHandle:
        """Attach a handle to ``plugin``; refused with 405 if the token excludes the plugin."""
        reply = await self._send(self.url, "attach", plugin=plugin)
        return JanusHandle(self, plugin, int(reply["data"]["id"]))

    async def close(self) -> None:
        """Stop the background tasks and destroy the session if Janus still answers."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusUnreachable("session closed"))
        self._pending.clear()
        if self.session_id is not None:
            with contextlib.suppress(JanusError):
                await self._send(self.url, "destroy")
            self.session_id = None

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_interval)
            try:
                await self.keepalive()
            except JanusError as exc:
                log.warning("keepalive of Janus session %s failed: %s", self.session_id, exc)
            except RuntimeError:
                # The HTTP client was closed under the session: nothing left to keep alive.
                return

    async def _poll_loop(self) -> None:
        params = {"maxev": "10", "token": self._token}
        while True:
            try:
                # Janus holds a long poll for up to 30 s before answering a keepalive.
                response = await self.http.get(self.url, params=params, timeout=40.0)
                reply = response.json() if response.status_code == 200 else None
            except (httpx.TransportError, ValueError) as exc:
                log.debug("event poll of Janus session %s failed: %s", self.session_id, exc)
                reply = None
            if isinstance(reply, dict) and reply.get("janus") == "error":
                # Typically 458 "no such session" after a Janus restart: answered at once,
                # so polling again without a pause would spin until the session is closed.
                log.debug("event poll of Janus session %s refused: %s", self.session_id, reply)
                reply = None
            if reply is None:
                await asyncio.sleep(0.5)
                continue
            # With maxev > 1 Janus answers an array of messages.
            messages = reply if isinstance(reply, list) else [reply]
            for message in messages:
                if isinstance(message, dict):
                    self._dispatch(message)

    def _dispatch(self, message: JSON) -> None:
        transaction = message.get("transaction")
        future = self._pending.get(str(transaction)) if transaction is not None else None
        if future is not None and message.get("janus") == "event" and not future.done():
            future.set_result(message)
        elif message.get("janus") != "keepalive":
            if self.events.full():
                # Nobody reads the notifications of this session: keep the newest ones.
                self.events.get_nowait()
            self.events.put_nowait(message)

    def _expect(self, transaction: str) -> asyncio.Future[JSON]:
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        return future

    def _forget(self, transaction: str) -> None:
        self._pending.pop(transaction, None)


@dataclass
class JanusHandle:
    """A handle attached to one plugin inside a :class:`JanusSession`."""

    session: JanusSession
    """Session owning the handle."""
    plugin: str
    """Plugin package name, e.g. ``janus.plugin.videoroom``."""
    handle_id: int
    """Identifier Janus gave the handle."""

    @property
    def url(self) -> str:
        """URL of this handle's endpoint."""
        return f"{self.session.url}/{self.handle_id}"

    async def request(self, body: Mapping[str, Any]) -> JSON:
        """Send a synchronous plugin request and return the plugin's data."""
        reply = await self.session._send(self.url, "message", body=dict(body))
        return _plugin_data(reply)

    async def request_async(
        self,
        body: Mapping[str, Any],
        jsep: Mapping[str, Any] | None = None,
        *,
        timeout: float = 10.0,
    ) -> tuple[JSON, JSON | None]:
        """Send an asynchronous plugin request; return the event's data and its JSEP.

        Needs a session created with ``poll_events=True``: the answer comes as an event.
        """
        if not self.session.poll_events:
            raise RuntimeError("asynchronous requests need a session that polls events")
        transaction = _transaction()
        future = self.session._expect(transaction)
        message: JSON = {
            "janus": "message",
            "transaction": transaction,
            "token": self.session._token,
            "body": dict(body),
        }
        if jsep is not None:
            message["jsep"] = dict(jsep)
        try:
            reply = await _post(self.session.http, self.url, message)
            if reply.get("janus") == "success":
                return _plugin_data(reply), reply.get("jsep")
            event = await asyncio.wait_for(future, timeout)
        finally:
            self.session._forget(transaction)
        return _plugin_data(event), event.get("jsep")

    async def detach(self) -> None:
        """Detach the handle from its plugin."""
        await self.session._send(self.url, "detach")
