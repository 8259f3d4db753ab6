"""Link qualification: the pure verdict and short real sessions through the proxy."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from concilium.telesurgery.cli import telesurgery
from concilium.telesurgery.impairment import profile
from concilium.telesurgery.qualification import (
    Measurements,
    QualificationThresholds,
    analyse,
    judge,
    percentile,
    qualify,
    write_report,
)


def good_measurements(**changes) -> Measurements:
    m = Measurements(duration_s=1.0, rate_hz=100.0, bitrate_bps=1e6)
    m.commands_sent = 100
    m.commands_received = 100
    m.rtt_ms = {"p50": 150, "p99": 155, "p999": 160, "max": 161}
    m.jitter_ms = {"p50": 0.5, "p99": 2, "p999": 3, "max": 3}
    m.longest_outage_ms = 12
    m.throughput_bps = 1e6
    for key, value in changes.items():
        setattr(m, key, value)
    return m


def test_verdict_is_go_when_every_criterion_passes():
    verdict = judge(good_measurements(), QualificationThresholds())
    assert verdict.go and verdict.reasons == []


def test_verdict_lists_a_reason_per_failed_criterion():
    m = good_measurements(
        loss=0.05, longest_outage_ms=80, rtt_ms={"p999": 300}, throughput_bps=0.5e6
    )
    verdict = judge(m, QualificationThresholds(max_outage_ms=50))
    assert not verdict.go
    failed = {c.name for c in verdict.criteria if not c.passed}
    assert failed == {"rtt_p999_ms", "loss", "longest_outage_ms", "throughput_ratio"}
    assert "longest_outage_ms 80 is above the limit 50" in verdict.reasons


def test_missing_measurements_fail():
    m = good_measurements(rtt_ms={})
    verdict = judge(m, QualificationThresholds())
    assert "rtt_p999_ms: not measured" in verdict.reasons


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="max_loss is a fraction below 1"):
        QualificationThresholds(max_loss=2)


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert math.isnan(percentile([], 99))


def test_analyse_finds_loss_outages_and_ipdv():
    arrivals = [(0.05 + i * 0.01, i, 50.0 + (i % 2), False) for i in range(100) if not 40 <= i < 50]
    m = analyse(
        duration_s=1.0,
        rate_hz=100,
        bitrate_bps=0,
        sent=100,
        arrivals=arrivals,
        duplicates=0,
        rtts=[(0.1, 100.0)],
        padding=[],
        link_drops={},
    )
    assert m.loss == pytest.approx(0.1)
    assert m.longest_outage_ms == pytest.approx(110.0)
    assert m.jitter_ms["p99"] == pytest.approx(1.0)


# The proxy that plays the network is a user-space process: on a shared 2-core CI machine
# (parallel workers, hypervisor steal) its own stalls show up as tail latency and jitter.
# The timing criteria get room for that; loss, outages and throughput, which stalls do not
# fake, keep the clinical limits, and the medians are checked against the profile below.
CI_THRESHOLDS = QualificationThresholds(rtt_p999_ms=1000, jitter_p99_ms=100)


def test_qualify_intercontinental_passes(tmp_path):
    report = qualify(
        profile("intercontinental-12000km"),
        CI_THRESHOLDS,
        duration_s=1.5,
        rate_hz=250,
        bitrate_bps=2e6,
        seed=1,
    )
    m = report.measurements
    assert report.verdict.go, report.verdict.reasons
    assert 140 < m.rtt_ms["p50"] < 200
    assert 65 < m.one_way_ms["p50"] < 100
    json_path, html_path = write_report(report, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["go"] is True and data["profile"] == "intercontinental-12000km"
    page = html_path.read_text()
    assert "<svg" in page and "<polyline" in page and "GO" in page


def test_qualify_degraded_fails_with_reasons():
    report = qualify(
        profile("degraded"),
        QualificationThresholds(),
        duration_s=1.0,
        rate_hz=250,
        bitrate_bps=4e6,
        seed=1,
    )
    assert not report.verdict.go
    failed = {c.name for c in report.verdict.criteria if not c.passed}
    assert {"loss", "longest_outage_ms", "throughput_ratio"} <= failed
    assert len(report.verdict.reasons) == len(failed)


def test_cli_qualify_exit_code_follows_the_verdict(tmp_path):
    procedure = tmp_path / "procedure.toml"
    procedure.write_text(
        "[safety]\nwatchdog_ms = 50\n[qualification]\nmax_loss = 0.02\n"
        "jitter_p99_ms = 100\nrtt_p999_ms = 1000\n"
    )
    runner = CliRunner()
    args = ["qualify", "--duration", "0.6", "--rate", "200", "--bitrate", "1000000"]
    result = runner.invoke(
        telesurgery,
        [*args, "--profile", "degraded", "--thresholds", str(procedure), "--out", str(tmp_path)],
    )
    assert result.exit_code == 1, result.output
    assert "NO-GO" in result.output
    assert (tmp_path / "qualification.html").exists()
    result = runner.invoke(
        telesurgery,
        [*args, "--profile", "lan", "--thresholds", str(procedure), "--out", str(tmp_path / "l")],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("GO")
