"""Where the server itself may connect for a session: the IP cameras ``ffmpeg`` relays and
the PTZ cameras driven over VISCA.

A director names these endpoints, and the server, not the director's browser, connects to
them: an unchecked URL would let a director make the server read a local file (``file:``),
listen for whoever connects (``tcp://...?listen``, ``udp://``, RTSP ``listen``, SRT
``mode=listener``, an ``rtp://`` input binding a local port) or reach any host its network
reaches. So only client modes of an explicit list of schemes are accepted
(:data:`STREAM_SCHEMES`), with none of ``ffmpeg``'s listening or local-binding options, and
only towards the networks the installation configures for its devices
(``Settings.live_device_networks``). Host names are resolved and every address they resolve
to must be in those networks; the check is made when the endpoint is added and again each
time the server connects (a name may resolve elsewhere later).

The decisions are pure functions of the URL or host and the networks, but for the name
resolution of :func:`resolve`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit

from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _

__all__ = [
    "STREAM_SCHEMES",
    "Network",
    "check_device_host",
    "check_stream_url",
    "device_address",
    "mask_credentials",
    "networks_of",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Sequence[str]]

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "srt"})
"""Schemes of a camera's stream, all client modes: ``ffmpeg`` calls the camera. ``rtp://``
is not among them: as an input it binds a local port and takes whatever reaches it."""
_LISTENING_OPTIONS = frozenset(
    {
        "listen",
        "listen_timeout",
        "rtsp_flags",
        "localport",
        "localaddr",
        "local_port",
        "local_addr",
        "bind_address",
        "reuse",
        "reuse_socket",
        "multicast",
        "udp",
        "fifo_size",
    }
)
"""``ffmpeg`` options, written in a URL's query, that listen, bind a local address or join a
multicast group instead of calling the camera."""
_SRT_OPTIONS = frozenset({"streamid", "passphrase", "pbkeylen", "latency", "mode"})
"""SRT options a caller may set (``mode`` only as ``caller``)."""
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})$")


def networks_of(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (``10.0.0.0/8``, ``192.0.2.7``) as networks."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def resolve(host: str) -> list[str]:
    """Every address ``host`` stands for (itself when it is an address)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


def check_device_host(
    host: str, networks: Sequence[Network], *, resolver: Resolver = resolve
) -> str:
    """``host``, if it is (or resolves only to) addresses of ``networks``.

    Raises :class:`InvalidInput` otherwise; the message names the host, never a credential.
    """
    device_address(host, networks, resolver=resolver)
    return host.strip().strip("[]")


def device_address(host: str, networks: Sequence[Network], *, resolver: Resolver = resolve) -> str:
    """The address to send to for ``host``, once every address it resolves to is on
    ``networks``: the server then sends to that very address, so a name resolving
    elsewhere a moment later changes nothing. Raises :class:`InvalidInput` otherwise."""
    host = host.strip().strip("[]")
    if not host or not (_HOST.match(host) or ":" in host):
        raise InvalidInput(_("Give the device's host name or address."))
    addresses = resolver(host)
    if not addresses:
        raise InvalidInput(_("The device's host {host} cannot be resolved.").format(host=host))
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError as exc:
            raise InvalidInput(
                _("The device's host {host} has no usable address.").format(host=host)
            ) from exc
        if not any(ip in network for network in networks):
            raise InvalidInput(
                _(
                    "{host} is not on a network this installation lets the server reach for "
                    "live devices (setting live_device_networks)."
                ).format(host=host)
            )
    return addresses[0].split("%")[0]


def check_stream_url(url: str, networks: Sequence[Network], *, resolver: Resolver = resolve) -> str:
    """A camera's stream URL, if the server may call it: an explicit scheme of
    :data:`STREAM_SCHEMES`, client mode only, a host on ``networks``.

    Raises :class:`InvalidInput` (a message without the URL's credentials) otherwise.
    """
    url = url.strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url) or len(url) > 400:
        raise InvalidInput(_("A camera's stream is one rtsp://, rtsps:// or srt:// URL."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(_("This camera URL cannot be read.")) from exc
    if parts.scheme.lower() not in STREAM_SCHEMES or "://" not in url:
        raise InvalidInput(_("A camera's stream is one rtsp://, rtsps:// or srt:// URL."))
    if not parts.hostname:
        raise InvalidInput(_("A camera URL names the camera's host."))
    if port == 0:
        raise InvalidInput(_("A camera URL names a real port."))
    options = parse_qsl(parts.query, keep_blank_values=True)
    names = {name.lower() for name, _value in options}
    # A bare ``?listen`` reads as an option named "listen"; ``a&listen`` too.
    names |= {piece.lower() for piece in re.split(r"[&;?]", parts.query) if piece}
    if names & _LISTENING_OPTIONS:
        raise InvalidInput(_("The server calls the camera: no listening or local options."))
    if parts.scheme.lower() == "srt":
        if {n for n, _value in options} - _SRT_OPTIONS or any(
            "=" not in piece for piece in parts.query.split("&") if piece
        ):
            raise InvalidInput(
                _("SRT options allowed: {options}.").format(options=", ".join(sorted(_SRT_OPTIONS)))
            )
        if any(n == "mode" and v.lower() != "caller" for n, v in options):
            raise InvalidInput(_("The server calls the camera: SRT mode=caller only."))
    check_device_host(parts.hostname, networks, resolver=resolver)
    return url


def mask_credentials(url: str) -> str:
    """``url`` with its password hidden (``rtsp://user:***@host/...``); without a user or a
    password, as it is. Also hides credentials in any URL within a longer text."""

    def hide(match: re.Match[str]) -> str:
        scheme, userinfo = match.group(1), match.group(2)
        user, colon, _ = userinfo.partition(":")
        return f"{scheme}{user}:***@" if colon else f"{scheme}***@"

    return re.sub(r"(\b[a-z][a-z0-9+.-]*://)([^/\s]+)@", hide, url, flags=re.IGNORECASE)
