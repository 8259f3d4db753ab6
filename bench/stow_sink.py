"""A STOW-RS endpoint that reads each request body whole and discards it.

``bench/imaging.py`` sends it the same dicomweb-client batches as the real servers: the rate
it reaches is what the client alone can send on this machine, the most any server can be
credited with. Run by the bench as ``python -m uvicorn --app-dir bench stow_sink:app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Answer every request with an empty STOW-RS response once its body has arrived."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/dicom+json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})
