"""Fixtures shared by the imaging tests: pydicom's sample files, generated studies, and an
archive on the test's database."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from concilium.imaging.archive import Archive
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series, generate_xa_cine


def sample_path(name: str) -> Path:
    """Path of a file shipped with pydicom (never downloaded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not shipped")
    return Path(str(path))


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """Look up a pydicom sample file by name."""
    return sample_path


@pytest.fixture(scope="session")
def study() -> SyntheticStudy:
    return SyntheticStudy(seed="tests-imaging")


@pytest.fixture(scope="session")
def ct_series(tmp_path_factory: pytest.TempPathFactory, study: SyntheticStudy) -> list[Path]:
    return generate_ct_series(tmp_path_factory.mktemp("ct"), 4, study=study)


@pytest.fixture(scope="session")
def xa_cine(tmp_path_factory: pytest.TempPathFactory, study: SyntheticStudy) -> Path:
    return generate_xa_cine(tmp_path_factory.mktemp("xa"), 30, study=study)


@pytest.fixture
def archive(runtime, tmp_path: Path) -> Iterator[Archive]:  # type: ignore[no-untyped-def]
    """An archive of its own, on the test's database, bus and clock; it stops writing at
    the end of the test."""
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    yield archive
    archive.close()


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Command-line messages in English, whatever catalogues an earlier test loaded."""
    from concilium.platform.i18n import using_locale

    monkeypatch.setenv("CONCILIUM_LANG", "en")

    with using_locale("en"):
        yield
