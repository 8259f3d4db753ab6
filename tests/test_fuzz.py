"""The fuzzing harnesses of fuzz/, each run for a few seconds from its seeds and the inputs of
the crashes found before (``make fuzz`` runs them for minutes).

Each harness feeds mutated inputs to one parser of what arrives from outside (DICOM objects,
STOW-RS bodies, OpenIGTLink streams, VISCA datagrams, the telesurgery link's datagrams, HL7
messages) and fails on any error other than the module's own documented ones. The inputs of
crashes found before (fuzz/regressions/) are replayed in each run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))

from run import REGRESSIONS, run_harness  # noqa: E402
from seeds import HARNESSES  # noqa: E402

#: Seconds of fuzzing per harness: the six, with their start-up, stay under a minute.
SECONDS = 4


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_finds_no_crash(harness: str, tmp_path: Path) -> None:
    outcome = run_harness(harness, SECONDS, tmp_path / "corpus", tmp_path / "crashes", seed=1)
    assert not outcome.crashed, outcome.output[-6000:]
    assert outcome.runs > 10, outcome.output[-3000:]
    assert not any((tmp_path / "crashes").iterdir())
    # The inputs of the crashes found and fixed before are part of the corpus, which libFuzzer
    # runs whole before mutating it: each stays fixed.
    regressions = REGRESSIONS / harness
    if regressions.is_dir():
        count = len(list(regressions.iterdir()))
        assert f"{count} files found in {regressions}" in outcome.output
