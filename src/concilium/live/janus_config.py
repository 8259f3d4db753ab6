"""Generate the configuration of the Janus media server Concilium runs.

Janus reads one ``janus.jcfg`` plus one ``<module>.jcfg`` per plugin or transport from its
configs folder (Janus 1.x, "Configuration" chapter of the Janus documentation; the files use
libconfig syntax). Concilium writes that folder under its data dir at every start, so the
effective media-plane settings are always the ones documented here:

* ICE gathers on the loopback interface only (``ice_enforce_list = "lo"``), no STUN, no
  IPv6: the media plane of the embedded default never touches another network.
* Only the HTTP transport is loaded, bound to 127.0.0.1, with the Admin API on a second
  loopback port guarded by a random ``admin_secret`` that stays inside this process.
* Only the VideoRoom, Streaming and Record&Play plugins are loaded. VideoRoom and Streaming
  get a random ``admin_key`` so only Concilium can create rooms and mountpoints, even though
  browsers talk to the same plugins.
* Stored-token authentication (``token_auth = true``) is on: every Janus API request needs a
  token that Concilium added through the Admin API (see :mod:`concilium.live.janus_client`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NEEDED_PLUGINS",
    "NEEDED_TRANSPORTS",
    "JanusConfig",
    "JanusLayout",
    "write_janus_config",
]

NEEDED_PLUGINS = ("libjanus_videoroom.so", "libjanus_streaming.so", "libjanus_recordplay.so")
"""Plugin libraries Concilium uses; every other library in the plugins folder is disabled."""
NEEDED_TRANSPORTS = ("libjanus_http.so",)
"""Transport libraries Concilium uses; every other one is disabled."""

_DEBIAN_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


def _secret() -> str:
    return secrets.token_urlsafe(32)


def _check_port(name: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ValueError(f"{name} must be a TCP/UDP port in 1..65535, got {port}")


@dataclass(frozen=True)
class JanusLayout:
    """Where the Debian ``janus`` package installs its loadable modules."""

    plugins_folder: Path = _DEBIAN_LIB / "plugins"
    """Folder of ``libjanus_*.so`` plugins."""
    transports_folder: Path = _DEBIAN_LIB / "transports"
    """Folder of transport modules."""
    events_folder: Path = _DEBIAN_LIB / "events"
    """Folder of event handler modules (all disabled)."""
    loggers_folder: Path = _DEBIAN_LIB / "loggers"
    """Folder of external logger modules (all disabled)."""


@dataclass(frozen=True)
class JanusConfig:
    """Settings of one Janus instance run by Concilium, secrets included.

    The object never leaves the server: the secrets in it give full control of the media
    plane. ``repr`` hides them so a log line cannot leak them.
    """

    data_dir: Path
    """Concilium data dir; Janus files live in ``<data_dir>/janus``."""
    http_port: int = 8288
    """Loopback port of the Janus API over HTTP (path ``/janus``). Not Janus's own default
    8088, so a system Janus (Debian enables ``janus.service``) does not collide with it."""
    admin_port: int = 7288
    """Loopback port of the Janus Admin API over HTTP (path ``/admin``)."""
    rtp_port_range: tuple[int, int] = (20000, 20999)
    """UDP ports Janus may use for WebRTC media."""
    streaming_port_range: tuple[int, int] = (21000, 21999)
    """UDP ports the Streaming plugin may pick for RTP ingest when asked for port 0."""
    session_timeout: int = 60
    """Seconds without a request or keepalive before Janus drops a session."""
    debug_level: int = 4
    """Janus log level, 0 (nothing) to 7 (everything)."""
    admin_secret: str = field(default_factory=_secret, repr=False)
    """Secret of the Admin API (token management); never sent to a browser."""
    plugin_admin_key: str = field(default_factory=_secret, repr=False)
    """``admin_key`` of VideoRoom and Streaming: needed to create rooms and mountpoints."""
    layout: JanusLayout = field(default_factory=JanusLayout)
    """Where the Janus modules are installed."""

    def __post_init__(self) -> None:
        _check_port("http_port", self.http_port)
        _check_port("admin_port", self.admin_port)
        if self.http_port == self.admin_port:
            raise ValueError("http_port and admin_port must differ")
        for name, (low, high) in (
            ("rtp_port_range", self.rtp_port_range),
            ("streaming_port_range", self.streaming_port_range),
        ):
            _check_port(name, low)
            _check_port(name, high)
            if low > high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {low}-{high}")
        if not 0 <= self.debug_level <= 7:
            raise ValueError(f"debug_level must be in 0..7, got {self.debug_level}")
        if self.session_timeout < 1:
            raise ValueError(f"session_timeout must be at least 1 s, got {self.session_timeout}")
        for name, value in (
            ("admin_secret", self.admin_secret),
            ("plugin_admin_key", self.plugin_admin_key),
        ):
            if len(value) < 16 or '"' in value or "\\" in value:
                raise ValueError(f"{name} must be at least 16 characters without quotes")

    @property
    def root(self) -> Path:
        """Folder holding everything Janus reads or writes."""
        return self.data_dir / "janus"

    @property
    def configs_folder(self) -> Path:
        """Folder of the generated ``.jcfg`` files."""
        return self.root / "conf"

    @property
    def recordings_folder(self) -> Path:
        """Folder under which every Janus recording (``.mjr``) is written."""
        return self.root / "recordings"

    @property
    def log_file(self) -> Path:
        """Where the supervisor sends Janus's output."""
        return self.root / "janus.log"

    @property
    def api_url(self) -> str:
        """Base URL of the Janus API."""
        return f"http://127.0.0.1:{self.http_port}/janus"

    @property
    def admin_url(self) -> str:
        """Base URL of the Janus Admin API."""
        return f"http://127.0.0.1:{self.admin_port}/admin"


def _quote(value: str) -> str:
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"value cannot be written in a Janus config file: {value!r}")
    return f'"{value}"'


def _disabled(folder: Path, keep: tuple[str, ...]) -> str:
    """Comma-separated list of the modules in ``folder`` that are not in ``keep``.

    Janus loads every library of its folders unless told otherwise (``disable`` directive of
    the ``plugins``/``transports``/``events``/``loggers`` sections of janus.jcfg).
    """
    if not folder.is_dir():
        return ""
    names = sorted(p.name for p in folder.iterdir() if p.suffix == ".so" and p.name not in keep)
    return ",".join(names)


def _janus_jcfg(cfg: JanusConfig) -> str:
    lay = cfg.layout
    rtp_low, rtp_high = cfg.rtp_port_range
    return f"""# Generated by Concilium at every start of the media server; edits are overwritten.
general: {{
	configs_folder = {_quote(str(cfg.configs_folder))}
	plugins_folder = {_quote(str(lay.plugins_folder))}
	transports_folder = {_quote(str(lay.transports_folder))}
	events_folder = {_quote(str(lay.events_folder))}
	loggers_folder = {_quote(str(lay.loggers_folder))}
	interface = "127.0.0.1"
	log_to_stdout = true
	debug_level = {cfg.debug_level}
	debug_timestamps = true
	debug_colors = false
	admin_secret = {_quote(cfg.admin_secret)}
	token_auth = true
	session_timeout = {cfg.session_timeout}
	server_name = "concilium-media"
	hide_dependencies = true
	event_handlers = false
	protected_folders = [
		"/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr"
	]
}}
certificates: {{
}}
media: {{
	ipv6 = false
	rtp_port_range = "{rtp_low}-{rtp_high}"
}}
nat: {{
	nice_debug = false
	ice_enforce_list = "lo"
	ice_lite = false
	full_trickle = false
}}
plugins: {{
	disable = {_quote(_disabled(lay.plugins_folder, NEEDED_PLUGINS))}
}}
transports: {{
	disable = {_quote(_disabled(lay.transports_folder, NEEDED_TRANSPORTS))}
}}
loggers: {{
	disable = {_quote(_disabled(lay.loggers_folder, ()))}
}}
events: {{
	broadcast = false
	disable = {_quote(_disabled(lay.events_folder, ()))}
}}
"""


def _http_jcfg(cfg: JanusConfig) -> str:
    return f"""# Generated by Concilium: Janus API and Admin API over plain HTTP, loopback only.
general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	port = {cfg.http_port}
	ip = "127.0.0.1"
	https = false
	acl = "127."
}}
admin: {{
	admin_base_path = "/admin"
	admin_http = true
	admin_port = {cfg.admin_port}
	admin_ip = "127.0.0.1"
	admin_https = false
	admin_acl = "127."
}}
cors: {{
}}
"""


def _videoroom_jcfg(cfg: JanusConfig) -> str:
    # No static rooms: Concilium creates every room through the API (permanent = false) and
    # re-creates them itself after a restart, so the room list has one source of truth.
    return f"""# Generated by Concilium: rooms are created through the API only.
general: {{
	admin_key = {_quote(cfg.plugin_admin_key)}
	lock_rtp_forward = true
	events = false
	string_ids = false
}}
"""


def _streaming_jcfg(cfg: JanusConfig) -> str:
    low, high = cfg.streaming_port_range
    return f"""# Generated by Concilium: mountpoints are created through the API only.
general: {{
	admin_key = {_quote(cfg.plugin_admin_key)}
	rtp_port_range = "{low}-{high}"
	events = false
	string_ids = false
}}
"""


def _recordplay_jcfg(cfg: JanusConfig) -> str:
    return f"""# Generated by Concilium.
general: {{
	path = {_quote(str(cfg.recordings_folder))}
	events = false
}}
"""


def write_janus_config(cfg: JanusConfig) -> Path:
    """Write every file Janus needs under ``cfg.root`` and return the path of janus.jcfg.

    Files are readable by the owner only (mode 0600) because janus.jcfg and the plugin files
    hold the Admin API secret and the plugin admin key.
    """
    cfg.configs_folder.mkdir(parents=True, exist_ok=True)
    cfg.recordings_folder.mkdir(parents=True, exist_ok=True)
    files = {
        "janus.jcfg": _janus_jcfg(cfg),
        "janus.transport.http.jcfg": _http_jcfg(cfg),
        "janus.plugin.videoroom.jcfg": _videoroom_jcfg(cfg),
        "janus.plugin.streaming.jcfg": _streaming_jcfg(cfg),
        "janus.plugin.recordplay.jcfg": _recordplay_jcfg(cfg),
    }
    # Files of an earlier layout would be read by Janus too (it loads <module>.jcfg for
    # every module), so the folder holds exactly what is written now.
    for stale in cfg.configs_folder.glob("*.jcfg"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        path = cfg.configs_folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        path.chmod(0o600)
    return cfg.configs_folder / "janus.jcfg"
