"""What other services may use of imaging: every name of `concilium.imaging.__all__`, found
where the package says, without the policy's action list loading the archive."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import concilium.imaging as imaging


def test_every_public_name_is_the_one_its_module_defines():
    assert set(imaging.__all__) == set(imaging._MODULE_OF)
    for name in imaging.__all__:
        module = importlib.import_module(imaging._MODULE_OF[name])
        assert getattr(imaging, name) is getattr(module, name), name


def test_no_public_name_is_also_a_module_of_the_package():
    # Importing ``concilium.imaging.X`` sets the package's attribute X to the module, which
    # would hide a public X of another kind.
    for name in imaging.__all__:
        assert importlib.util.find_spec(f"concilium.imaging.{name}") is None, name


def test_the_actions_of_imaging_load_without_the_archive():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, concilium.services;"
            "print(sorted({'pydicom', 'pynetdicom'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
