"""A plain (non-editable) wheel carries the built-in specs: `--model mobilenet_v1`
resolves from site-packages, with no checkout beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_specs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "configs", src / "configs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "mnsize", src / "mnsize", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("mnsize-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mnsize/configs/mobilenet_v1.yaml" in names
    assert "mnsize/configs/mobilenet_v1_shallow.yaml" in names
    assert "mnsize/schemas/check.schema.json" in names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import json, sys, mnsize\n"
            f"assert mnsize.__file__.startswith({str(site)!r}), mnsize.__file__\n"
            "from mnsize.cli import main\n"
            "main(['table', '--model', 'mobilenet_v1_shallow', '--format', 'json'])\n")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + code],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"madds": 307323392' in proc.stdout
