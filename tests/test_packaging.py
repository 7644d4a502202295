"""mnsize installs, and finds its built-in specs, however it is installed: from
a clone made without symbolic links (git's usual setting on Windows) as a wheel
(`pip install .`) and as an editable install (`pip install -e .`), and from a
wheel that carries the specs with no checkout beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# offline and quiet: nothing is resolved or downloaded, the dependencies come from this environment
PIP_ENV = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
PIP_ENV.pop("PYTHONPATH", None)
# `mnsize table`: the default model, mobilenet_v1 at alpha 1 and 224x224 (569M mult-adds, 4.2M params)
TABLE_TOTALS = ("568,740,352", "4,210,088")


def _venv(where: Path) -> tuple[Path, Path]:
    """A bare virtual environment (its python and site-packages) that sees this one's packages (pip,
    setuptools, click, rich, pyyaml) through a .pth entry, which sorts after any the install writes."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "zz_outer_site.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return python, Path(site)


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=PIP_ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_installs_from_a_clone_without_links(editable, tmp_path):
    pytest.importorskip("pip")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-c", "core.symlinks=false", str(ROOT), str(clone)],
                   check=True, timeout=120)
    python, site = _venv(tmp_path / "venv")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed",
          *(["-e"] if editable else []), "."], cwd=clone)
    if editable:  # a plain path entry, not an import hook that every Python start-up imports (setup.py)
        (pth,) = site.glob("__editable__*.pth")
        assert not pth.read_text().startswith("import"), pth.read_text()

    away = tmp_path / "elsewhere"  # neither the clone nor this checkout is the working directory
    away.mkdir()
    where = _run([str(python), "-c", "import mnsize; print(mnsize.__file__)"], cwd=away).strip()
    assert Path(where).resolve().is_relative_to((clone if editable else tmp_path / "venv").resolve()), where
    mnsize = python.parent / ("mnsize.exe" if os.name == "nt" else "mnsize")
    table = _run([str(mnsize), "table"], cwd=away)
    assert all(total in table for total in TABLE_TOTALS), table
    # configs/published.yaml, the other file read from the specs' folder
    best = json.loads(_run([str(mnsize), "fit", "--max-madds", "150M", "--objective", "top1", "-f", "json"],
                           cwd=away))["best"]
    assert (best["model"], best["alpha"], best["resolution"], best["madds"], best["top1"]) == (
        "mobilenet_v1", 0.5, [224, 224], 149_497_088, 63.3)


def test_wheel_ships_the_specs(tmp_path):
    """The wheel built from this working tree carries every module, spec and schema."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "configs", src / "configs", ignore=skip)
    shutil.copytree(ROOT / "mnsize", src / "mnsize", ignore=skip)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300, env=PIP_ENV)
    (wheel,) = wheels.glob("mnsize-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(src).as_posix() for path in (src / "mnsize").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    specs = {f"mnsize/configs/{path.name}" for path in (src / "configs").glob("*.yaml")}
    assert "mnsize/configs/mobilenet_v1_shallow.yaml" in specs
    assert "mnsize/configs/published.yaml" in specs
    assert specs <= names, sorted(specs - names)
    assert "mnsize/schemas/check.schema.json" in names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300, env=PIP_ENV)
    code = ("import json, sys, mnsize\n"
            f"assert mnsize.__file__.startswith({str(site)!r}), mnsize.__file__\n"
            "from mnsize.cli import main\n"
            "main(['table', '--model', 'mobilenet_v1_shallow', '--format', 'json'])\n")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + code],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"madds": 307323392' in proc.stdout
