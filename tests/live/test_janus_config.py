"""The generated Janus configuration keeps the media plane on loopback and locked down."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from concilium.live.janus_config import JanusConfig, JanusLayout, write_janus_config


def _fake_layout(tmp_path: Path) -> JanusLayout:
    folders = {}
    for kind, names in {
        "plugins": [
            "libjanus_videoroom.so",
            "libjanus_streaming.so",
            "libjanus_recordplay.so",
            "libjanus_sip.so",
            "libjanus_echotest.so",
        ],
        "transports": ["libjanus_http.so", "libjanus_websockets.so", "libjanus_pfunix.so"],
        "events": ["libjanus_sampleevh.so"],
        "loggers": ["libjanus_jsonlog.so"],
    }.items():
        folder = tmp_path / "lib" / kind
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).touch()
        folders[kind] = folder
    return JanusLayout(
        plugins_folder=folders["plugins"],
        transports_folder=folders["transports"],
        events_folder=folders["events"],
        loggers_folder=folders["loggers"],
    )


def _value(text: str, key: str) -> str:
    match = re.search(rf"^\s*{key} = (.+)$", text, re.MULTILINE)
    assert match, f"{key} missing"
    return match.group(1).strip()


def test_janus_gathers_ice_on_loopback_only_without_stun(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path, layout=_fake_layout(tmp_path))
    text = write_janus_config(cfg).read_text()
    assert _value(text, "ice_enforce_list") == '"lo"'
    assert _value(text, "interface") == '"127.0.0.1"'
    assert _value(text, "ipv6") == "false"
    assert "stun_server" not in text
    assert _value(text, "token_auth") == "true"


def test_only_needed_plugins_and_the_http_transport_are_loaded(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path, layout=_fake_layout(tmp_path))
    text = write_janus_config(cfg).read_text()
    sections = re.findall(r"^(\w+): \{[^}]*?\tdisable = \"([^\"]*)\"", text, re.MULTILINE)
    disabled = {section: set(value.split(",")) for section, value in sections}
    assert disabled["plugins"] == {"libjanus_sip.so", "libjanus_echotest.so"}
    assert disabled["transports"] == {"libjanus_websockets.so", "libjanus_pfunix.so"}
    assert disabled["events"] == {"libjanus_sampleevh.so"}
    assert disabled["loggers"] == {"libjanus_jsonlog.so"}


def test_http_transport_and_admin_api_bind_loopback_ports(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path, http_port=18088, admin_port=17088)
    write_janus_config(cfg)
    text = (cfg.configs_folder / "janus.transport.http.jcfg").read_text()
    assert _value(text, "port") == "18088"
    assert _value(text, "ip") == '"127.0.0.1"'
    assert _value(text, "admin_port") == "17088"
    assert _value(text, "admin_ip") == '"127.0.0.1"'
    assert _value(text, "admin_http") == "true"
    assert cfg.api_url == "http://127.0.0.1:18088/janus"


def test_secrets_are_random_private_and_hidden_from_repr(tmp_path: Path) -> None:
    one, two = JanusConfig(tmp_path / "a"), JanusConfig(tmp_path / "b")
    assert one.admin_secret != two.admin_secret
    assert one.plugin_admin_key != one.admin_secret
    write_janus_config(one)
    assert one.admin_secret not in repr(one)
    assert one.plugin_admin_key not in repr(one)
    core = (one.configs_folder / "janus.jcfg").read_text()
    assert _value(core, "admin_secret") == f'"{one.admin_secret}"'
    videoroom = (one.configs_folder / "janus.plugin.videoroom.jcfg").read_text()
    assert _value(videoroom, "admin_key") == f'"{one.plugin_admin_key}"'
    for path in one.configs_folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_recordings_stay_under_the_data_dir(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path)
    write_janus_config(cfg)
    text = (cfg.configs_folder / "janus.plugin.recordplay.jcfg").read_text()
    assert _value(text, "path") == f'"{tmp_path / "janus" / "recordings"}"'
    assert cfg.recordings_folder.is_dir()


def test_stale_module_configs_are_removed(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path)
    cfg.configs_folder.mkdir(parents=True)
    stale = cfg.configs_folder / "janus.plugin.sip.jcfg"
    stale.write_text("general: {}\n")
    write_janus_config(cfg)
    assert not stale.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"http_port": 0}, "http_port"),
        ({"admin_port": 70000}, "admin_port"),
        ({"http_port": 9000, "admin_port": 9000}, "must differ"),
        ({"rtp_port_range": (30000, 20000)}, "low <= high"),
        ({"debug_level": 9}, "debug_level"),
        ({"admin_secret": "short"}, "admin_secret"),
        ({"plugin_admin_key": 'x"' * 10}, "plugin_admin_key"),
        ({"session_timeout": 0}, "session_timeout"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JanusConfig(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_default_ports_avoid_a_system_janus(tmp_path: Path) -> None:
    cfg = JanusConfig(tmp_path)
    assert (cfg.http_port, cfg.admin_port) == (8288, 7288)
    assert cfg.api_url == "http://127.0.0.1:8288/janus"
    assert cfg.admin_url == "http://127.0.0.1:7288/admin"
