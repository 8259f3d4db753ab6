"""The modality side of reading's public face: found where the package says, and loaded on
first use only, so that importing the service (its actions, for every command) brings no
DICOM library along."""

from __future__ import annotations

import importlib
import subprocess
import sys

import concilium.reading as reading


def test_every_lazy_name_is_the_one_its_module_defines():
    assert set(reading._MODULE_OF) <= set(reading.__all__)
    for name, module in reading._MODULE_OF.items():
        assert getattr(reading, name) is getattr(importlib.import_module(module), name), name


def test_importing_reading_loads_no_dicom_library():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, concilium.reading;"
            "print(sorted({'pydicom', 'pynetdicom'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
