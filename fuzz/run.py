"""Run the fuzzing harnesses, each in its own process, for a bounded time.

``python fuzz/run.py --seconds 300 [--corpus DIR] [--crashes DIR] [HARNESS ...]`` runs each
named harness (all by default) for that many seconds with libFuzzer's engine (atheris),
starting from its seeds (:mod:`seeds`), the inputs of crashes found and fixed before
(``fuzz/regressions/<harness>/``, replayed first, so each stays fixed) and what earlier runs
kept in ``--corpus``. A crash leaves its input in ``--crashes`` and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from seeds import HARNESSES, write_seeds

FUZZ = Path(__file__).resolve().parent
REGRESSIONS = FUZZ / "regressions"
_RUNS = re.compile(rb"stat::number_of_executed_units: (\d+)")


@dataclass(frozen=True)
class Outcome:
    """What one bounded run of a harness did."""

    harness: str
    runs: int
    """Inputs executed, seeds and regressions included."""
    seconds: float
    crashed: bool
    output: str
    """libFuzzer's and the harness's output (the traceback of a crash)."""


def run_harness(
    harness: str, seconds: int, corpus: Path, crashes: Path, *, seed: int = 0
) -> Outcome:
    """Fuzz one harness for ``seconds`` (with ``seed`` for libFuzzer's choices; 0: random)."""
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-seeds-{harness}-") as scratch:
        seeds = write_seeds(Path(scratch), harness)
        regressions = REGRESSIONS / harness
        sources = [str(seeds)] + ([str(regressions)] if regressions.is_dir() else [])
        command = [
            sys.executable,
            str(FUZZ / f"{harness}.py"),
            f"-max_total_time={seconds}",
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-max_len=16384",
            "-print_final_stats=1",
            f"-seed={seed}",
            f"-artifact_prefix={crashes}/{harness}-",
            str(corpus),
            *sources,
        ]
        started = time.monotonic()
        # libFuzzer ends the process without Python's exit handlers: what a harness keeps
        # in its temporary folder goes with this one.
        done = subprocess.run(  # noqa: S603 (our own harness, by its path)
            command,
            capture_output=True,
            cwd=FUZZ,
            env={**os.environ, "TMPDIR": scratch},
            timeout=seconds * 3 + 120,
            check=False,
        )
        elapsed = time.monotonic() - started
    found = _RUNS.search(done.stderr)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return Outcome(
        harness, int(found.group(1)) if found else 0, elapsed, done.returncode != 0, output
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("harnesses", nargs="*", metavar="HARNESS", help=", ".join(HARNESSES))
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--corpus", type=Path, default=FUZZ / "corpus")
    parser.add_argument("--crashes", type=Path, default=FUZZ / "crashes")
    args = parser.parse_args()
    unknown = set(args.harnesses) - set(HARNESSES)
    if unknown:
        parser.error(f"no harness {', '.join(sorted(unknown))}")
    failed = False
    for harness in args.harnesses or HARNESSES:
        outcome = run_harness(
            harness, args.seconds, args.corpus.resolve() / harness, args.crashes.resolve()
        )
        verdict = "CRASH" if outcome.crashed else "ok"
        print(f"{harness}: {outcome.runs} runs in {outcome.seconds:.0f} s: {verdict}")
        if outcome.crashed:
            failed = True
            print(outcome.output[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
