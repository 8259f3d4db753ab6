"""The boundaries of imaging: what other services may use (every name of
`concilium.imaging.__all__`, found where the package says, without the policy's action list
loading the archive), and a domain that never imports its protocol adapters."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

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


DOMAIN = (
    "access",
    "archive",
    "export",
    "ingest",
    "lifecycle",
    "matching",
    "nodes",
    "parsing",
    "query",
    "retrieve",
    "storage",
)
"""Modules of the archive's domain: no protocol, no web."""
ADAPTERS = ("concilium.web", "concilium.imaging.dicomweb", "concilium.imaging.dimse", "fastapi")


def test_the_domain_never_imports_its_adapters():
    for name in DOMAIN:
        path = Path(imaging.__file__).with_name(f"{name}.py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not {m for m in imported if m.startswith(ADAPTERS)}, name
