"""Configuration: environment variables ``CONCILIUM_*`` over an optional TOML file over defaults.

Every option is documented here, next to its default; ``concilium config show`` prints the
effective values with secrets masked.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROLES = (
    "admin",
    "radiologist",
    "referring_physician",
    "specialist",
    "coordinator",
    "technologist",
    "engineer",
    "learner",
)
"""Roles a membership can give at a site (a user may hold several)."""

SECRET_FIELDS = frozenset({"secret_key", "smtp_password"})


def _janus_installed() -> bool:
    """Whether the Janus media server is installed where Debian puts it, or on PATH."""
    return any(Path(p).is_file() for p in ("/usr/bin/janus", "/usr/sbin/janus")) or bool(
        shutil.which("janus")
    )


class Settings(BaseSettings):
    """Effective configuration of one Concilium process."""

    model_config = SettingsConfigDict(env_prefix="CONCILIUM_", extra="forbid")

    data_dir: Path = Path("./var")
    """Directory holding every file Concilium writes (database, images, recordings, keys)."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite in WAL mode at ``<data_dir>/concilium.db``."""
    http_host: str = "127.0.0.1"
    """Address the HTTP server listens on."""
    http_port: int = Field(default=8000, ge=1, le=65535)
    """Port the HTTP server listens on."""
    public_url: str = "http://127.0.0.1:8000"
    """Base URL users reach the web UI at (used in links, QR codes, CORS)."""
    secret_key: str = ""
    """Key for encrypting second-factor secrets at rest and, through a key derived from it,
    signing audit checkpoints (changing it makes earlier checkpoints fail verification);
    empty means generated in the data dir."""
    cookie_secure: bool = True
    """Send the session cookie with the Secure attribute (browsers accept it on loopback too)."""
    session_idle_minutes: int = Field(default=30, ge=1)
    """A session without a request for this long is ended."""
    session_absolute_hours: int = Field(default=12, ge=1)
    """A session is ended this long after login, whatever its activity."""
    mfa_required_roles: list[str] = Field(
        default_factory=lambda: ["admin", "radiologist", "specialist", "engineer"]
    )
    """Roles whose holders must use a TOTP second factor."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed logins on one account before it is locked temporarily."""
    lockout_minutes: int = Field(default=15, ge=1)
    """How long an account stays locked after too many failures."""
    login_ip_limit_per_minute: int = Field(default=20, ge=1)
    """Failed sign-in attempts (passwords and second-factor codes alike) accepted from one
    address per minute before its attempts are refused."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``) of the reverse proxies
    in front of Concilium. Only a request whose peer is one of them has its
    ``X-Forwarded-For`` read: from the right, the first address that is not a trusted proxy
    is the client's (throttling, audit, sessions); what lies left of it was written by the
    client and is ignored. Empty: the peer is the client, whatever the headers say."""
    account_link_hours: int = Field(default=72, ge=1, le=24 * 14)
    """How long a set-up link (new account) or reset link (password and second factor),
    issued by an administrator, stays valid; it works once."""
    emergency_access_minutes: int = Field(default=60, ge=5)
    """How long a break-the-glass grant lasts."""
    token_max_days: int = Field(default=365, ge=1)
    """Longest lifetime an API token may be given."""
    audit_checkpoint_seconds: float = Field(default=60.0, ge=1, le=86400)
    """While ``concilium serve`` runs, it appends a signed checkpoint of the audit chain's head
    (sequence number, hash, time) to ``<data_dir>/audit/checkpoints.jsonl``, and sends it to
    ``audit_syslog_address``: at start, at stop, and at most this long after the chain grows.
    ``concilium audit verify`` reports a chain cut or rewound below any checkpoint; entries
    added since the latest one are covered by the next."""
    audit_checkpoint_entries: int = Field(default=1000, ge=1)
    """A checkpoint is also taken as soon as this many entries were added since the last one
    (a thread reads the head every 5 seconds, or every ``audit_checkpoint_seconds`` if
    shorter; requests never wait for a checkpoint)."""
    audit_syslog_address: str = ""
    """``host:port`` (``[address]:port`` for IPv6) of a syslog collector that receives each
    audit checkpoint as an RFC 5424 message over UDP (RFC 5426); empty means the data dir
    file only. A collector out of reach of the database's administrators keeps the
    checkpoints even if the data dir is altered: give its file to ``audit verify
    --checkpoints``."""
    log_level: str = "INFO"
    """Level of the JSON application log on standard error."""
    redis_url: str = ""
    """Redis URL for events between processes; empty means the in-process bus."""
    dicom_ae_title: str = Field(default="CONCILIUM", min_length=1, max_length=16)
    """AE title of the archive's DICOM services (PS3.8 7: up to 16 characters)."""
    dicom_host: str = "127.0.0.1"
    """Address the DICOM (DIMSE) server listens on; 0.0.0.0 to reach modalities."""
    dicom_port: int = Field(default=11112, ge=0, le=65535)
    """Port of the DICOM server started by ``concilium serve``; 0 means no DICOM server."""
    dicom_allow_unknown_ae: bool = False
    """Accept associations from AE titles not registered with ``concilium dicom ae add``
    (they may only C-ECHO: storing and querying need a registered node)."""
    dicom_duplicate_policy: str = Field(default="keep", pattern="^(keep|replace)$")
    """An instance re-sent with the same SOP Instance UID but different bytes: ``keep`` the
    stored one (logged as a warning) or ``replace`` it."""
    archive_writer_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    """A process writing to the image store holds a lease on its pending writes in the
    database. Once it has lapsed (the process died, on this host or another sharing the
    store), the next process starting, or any live writer's periodic sweep, resolves them:
    indexed files stay, the others are removed. Keep it above the longest pause a process may
    take and the clock difference between the hosts."""
    archive_writer_renew_seconds: float = Field(default=10.0, gt=0, le=1200)
    """How often a writing process renews its lease (one UPDATE) and looks for lapsed ones
    (one indexed query); well under ``archive_writer_lease_seconds``."""
    dicom_tls_certificate: Path | None = None
    """PEM certificate (chain) of the DICOM listener: with its key, the listener speaks TLS
    only (PS3.15 Annex B, BCP 195 profile)."""
    dicom_tls_key: Path | None = None
    """PEM private key of that certificate (keep it mode 0600)."""
    dicom_tls_client_ca: Path | None = None
    """PEM certificates of the authorities whose client certificates are accepted: when set,
    a node must present a certificate they signed (mutual TLS). The archive also trusts them,
    instead of the system's authorities, when it calls a node registered for TLS."""
    hl7_host: str = "127.0.0.1"
    """Address the HL7 v2 (MLLP) listener listens on; 0.0.0.0 to reach the hospital systems."""
    hl7_port: int = Field(default=2575, ge=0, le=65535)
    """Port of the MLLP listener started by ``concilium serve`` for orders and patient
    messages (registered senders only, ``concilium hl7 node add``); 0 means no listener."""
    hl7_max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest HL7 message accepted; a larger one is answered AR and dropped."""
    hl7_workers: int = Field(default=4, ge=1, le=64)
    """Messages stored at once (each in its own database transaction, in a worker thread)."""
    hl7_outbound: bool = True
    """Deliver the queued outbound HL7 messages (results, images available) while serving;
    off, they wait in the queue."""
    hl7_outbound_application: str = Field(default="CONCILIUM", min_length=1, max_length=64)
    """MSH-3 of the messages sent (MSH-4 is the site's FINESS)."""
    hl7_outbound_timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds allowed to connect to a hospital system, then again for its acknowledgment."""
    hl7_outbound_retry: float = Field(default=30.0, gt=0)
    """Seconds before the first retry of a message not acknowledged; doubled at each try."""
    hl7_outbound_retry_max: float = Field(default=3600.0, gt=0)
    """Longest wait between two tries of a message."""
    hl7_outbound_lease: float = Field(default=300.0, gt=0)
    """Seconds a message stays taken by a delivery; after that (the process stopped while
    sending) another delivery takes it again."""
    hl7_outbound_period: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between two looks for messages due (and for complete studies)."""
    critical_finding_ack_critical: float = Field(default=30 * 60.0, gt=0)
    """Seconds a referring physician has to acknowledge a critical finding before the
    ordering site's coordinators are alerted."""
    critical_finding_ack_urgent: float = Field(default=2 * 3600.0, gt=0)
    """The same for an urgent finding."""
    critical_finding_ack_actionable: float = Field(default=3 * 86400.0, gt=0)
    """The same for a non-urgent actionable finding."""
    images_available_quiet: float = Field(default=600.0, ge=0)
    """A study whose order has no completed performed step is complete when no instance has
    arrived for this many seconds; its hospital is then told that images are available."""
    dicomweb_cors_origins: list[str] = Field(default_factory=list)
    """Origins (``https://viewer.example.org``) whose browser viewers may call ``/dicomweb`` and
    ``/wado`` across origins (CORS); empty means same-origin only."""
    dicomweb_max_stow_bytes: int = Field(default=4 * 1024**3, ge=1024)
    """Largest STOW-RS request body accepted, in bytes (it is streamed to disk, not memory);
    a larger one is refused with 413 and nothing of it is stored."""
    render_max_output_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    """Largest image a rendering (DICOMweb ``rendered`` and ``thumbnail``, WADO-URI) may
    produce, in pixels (viewport width x height, or the frame's own size without one); a
    larger request is refused with 413 before anything is decoded."""
    render_max_decoded_bytes: int = Field(default=256 * 1024**2, ge=1024**2)
    """Largest frame a rendering may decode, in bytes, as its header declares it (Rows x
    Columns x Samples per Pixel x bytes per sample; every frame for a deflated object, which
    is inflated whole); a larger one is refused with 413 before anything is decoded."""
    render_concurrency: int = Field(default=2, ge=1, le=64)
    """Renderings decoded at once in one process; others wait for a slot (at most
    ``render_wait_seconds``, then 503 problem details)."""
    render_wait_seconds: float = Field(default=30.0, gt=0)
    """How long a rendering waits for a decoding slot before being answered 503."""
    ohif_dir: Path = Path(__file__).resolve().parents[2] / "frontend" / "ohif"
    """The prebuilt OHIF Viewer (``@ohif/app``'s ``dist``) served at ``/ohif``; ``make ohif``
    installs it there."""
    live_enabled: bool = Field(default_factory=_janus_installed)
    """Start and supervise the Janus media server with ``concilium serve`` (live sessions);
    true by default when a ``janus`` binary is installed."""
    live_janus_http_port: int = Field(default=8288, ge=1, le=65535)
    """Loopback port of the Janus API; browsers reach it through Concilium at ``/janus``."""
    live_janus_admin_port: int = Field(default=7288, ge=1, le=65535)
    """Loopback port of the Janus Admin API; never exposed, used by Concilium only."""
    live_webrtc_viewers: int = Field(default=10, ge=0, le=1000)
    """Viewers of a broadcast watch over WebRTC (well under a second behind) while fewer than
    this many people receive the session's room over WebRTC; beyond, they join the HLS
    audience (a few seconds behind, served by any cache at any size). 0: always HLS."""
    live_device_networks: list[str] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    )
    """Networks (``10.20.0.0/16``) or addresses the server itself may connect to for a live
    session: the IP cameras ``ffmpeg`` relays and the PTZ cameras driven over VISCA. A
    director's camera URL or host outside them is refused, as is any listening mode (see
    ``concilium.live.endpoints``). By default the private networks, where a hospital's
    cameras are; neither loopback (the server's own services) nor the Internet. Empty: no
    camera may be added."""
    telesurgery_qualification_max_age_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    """A telesurgical procedure starts only after a passing link qualification younger than
    this (the network between the two sites may have changed since)."""
    smtp_host: str = ""
    """Host name of the SMTP relay e-mail leaves through (RFC 5321); empty means e-mail is
    off: messages wait in the outbox (``/admin/outbox``) until a relay is configured.

    A regional secure health messaging relay (an MSSanté operator's, say) is an ordinary
    SMTP submission server: give its host name, ``smtp_port = 587``,
    ``smtp_security = "starttls"``, the account of the platform's application mailbox in
    ``smtp_username`` and ``smtp_password``, and that mailbox as ``mail_from`` (such relays
    refuse any other sender, and refuse recipients outside their trust space: those messages
    are marked failed at once, with the relay's status code). An operator authenticating
    applications by certificate rather than password takes ``smtp_client_certificate`` and
    ``smtp_client_key``; a relay whose certificate a private authority issued takes
    ``smtp_ca_file``."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    """Port of the relay: 587 for submission with STARTTLS, 465 for implicit TLS (RFC 8314),
    25 for a relay on the hospital's own network."""
    smtp_security: str = Field(default="starttls", pattern="^(none|starttls|tls)$")
    """``starttls``: plain connection upgraded by STARTTLS (RFC 3207), which must succeed;
    ``tls``: TLS from the first byte (RFC 8314 section 3.3); ``none``: no encryption, for a
    relay on the same machine only (credentials are then refused). The relay's certificate
    and host name are always verified (against ``smtp_ca_file`` or the system's
    authorities)."""
    smtp_username: str = ""
    """Account on the relay (SMTP AUTH, RFC 4954, with PLAIN or LOGIN over TLS); empty means
    no authentication."""
    smtp_password: str = ""
    """Password of that account (shown masked by ``concilium config show``)."""
    smtp_ca_file: Path | None = None
    """PEM certificates of the authorities trusted for the relay's certificate, instead of the
    system's (a private or regional authority, such as IGC Santé's)."""
    smtp_client_certificate: Path | None = None
    """PEM certificate (chain) presented to the relay, for relays that authenticate the
    platform by certificate (mutual TLS)."""
    smtp_client_key: Path | None = None
    """PEM private key of that certificate (keep it mode 0600)."""
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long to wait for the relay at each step before the attempt counts as failed."""
    mail_from: str = ""
    """Sender of every message, with its display name: ``Concilium CHR Metz
    <concilium@chr-metz.fr>``. Required when ``smtp_host`` is set."""
    mail_reply_to: str = ""
    """Where replies go (``Reply-To``), e.g. the service desk; empty means to ``mail_from``."""
    mail_max_attempts: int = Field(default=10, ge=1, le=100)
    """Tries of one message before it is marked failed (the relay refusing it outright, with
    a 5xx status, fails it at once). Administrators can try a failed message again from
    ``/admin/outbox``."""
    mail_retry_seconds: float = Field(default=60.0, gt=0, le=86400)
    """Wait before the second try; each further wait doubles, up to ``mail_retry_max_seconds``
    (with the defaults, ten tries span about eight hours)."""
    mail_retry_max_seconds: float = Field(default=4 * 3600.0, gt=0, le=7 * 86400)
    """Longest wait between two tries."""
    mail_lease_seconds: float = Field(default=300.0, ge=5, le=86400)
    """How long a process holds a message it is sending. A process killed mid-send leaves the
    message to another one (or itself after a restart) once this has passed; keep it well
    above ``smtp_timeout_seconds``."""
    mail_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often ``concilium serve`` looks for messages due (one indexed query)."""

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # Helpers started from here (Janus, ffmpeg) may run in another working directory.
        return value.expanduser().resolve()

    @field_validator("audit_syslog_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        if value:
            _host_port(value)
        return value

    @field_validator("trusted_proxies", "live_device_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an address or a network: {exc}") from exc
        return value

    @field_validator("mfa_required_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known roles are {list(ROLES)}")
        return value

    @field_validator("mail_from", "mail_reply_to")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if value:
            mailbox_address(value)
        return value

    @model_validator(mode="after")
    def _mail_relay(self) -> Settings:
        if self.smtp_host and not self.mail_from:
            raise ValueError("smtp_host is set: mail_from must name the sender")
        if self.smtp_username and self.smtp_security == "none":
            raise ValueError("SMTP credentials are only sent over TLS: set smtp_security")
        if (self.smtp_client_certificate is None) != (self.smtp_client_key is None):
            raise ValueError("smtp_client_certificate and smtp_client_key go together")
        if self.archive_writer_renew_seconds * 2 > self.archive_writer_lease_seconds:
            # A lease renewed less than twice within its length lapses at the first delay.
            raise ValueError(
                "archive_writer_renew_seconds must be at most half archive_writer_lease_seconds"
            )
        if self.mail_lease_seconds < 4 * self.smtp_timeout_seconds:
            # A send waits up to the timeout at each of its steps; a lease running out while
            # the relay is merely slow would let another process send the message twice.
            raise ValueError("mail_lease_seconds must be at least 4 x smtp_timeout_seconds")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("CONCILIUM_CONFIG_FILE")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'concilium.db').resolve()}"

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` as networks (an address is a network of one)."""
        return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in self.trusted_proxies)

    @cached_property
    def audit_syslog_destination(self) -> tuple[str, int] | None:
        """``audit_syslog_address`` as (host, port), or None when not configured."""
        return _host_port(self.audit_syslog_address) if self.audit_syslog_address else None

    def masked(self) -> dict[str, Any]:
        """Effective values for display, with secrets and URL passwords masked."""
        values: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                unset = "(generated in data dir)" if name == "secret_key" else ""
                value = "****" if value else unset
            elif name in {"database_url", "redis_url"}:
                value = mask_url_password(str(value))
            elif isinstance(value, Path):
                value = str(value)
            values[name] = value
        values["effective_database_url"] = mask_url_password(self.effective_database_url)
        return values


def _host_port(value: str) -> tuple[str, int]:
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from exc
    extra = parts.path or parts.query or parts.fragment or parts.username is not None
    if not parts.hostname or not port or extra:
        raise ValueError(f"{value!r} is not host:port (or [IPv6 address]:port)")
    return parts.hostname, port


def mailbox_address(value: str) -> str:
    """The address of a mailbox written ``Name <local@domain>`` or ``local@domain``."""
    if "\r" in value or "\n" in value:
        raise ValueError("a mailbox is one line")
    _name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise ValueError(f"{value!r} is not a mailbox such as 'Name <local@domain.fr>'")
    return address


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
