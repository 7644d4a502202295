"""Writing files safely: mnsize.files (destinations checked before any work,
atomic replacement, links written through), and what `profile` may overwrite."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
import yaml
from click.testing import CliRunner

from mnsize import files
from mnsize.cli import cli
from mnsize.errors import MnsizeError
from mnsize.files import append_atomic, check_destination, replace_atomically, same_file, write_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links, FIFOs and modes as POSIX has them")


@pytest.fixture(params=["unnamed", "named"])
def temporaries(request, monkeypatch):
    """Both ways to a temporary file: Linux's unnamed one, and a named one elsewhere."""
    if request.param == "named":
        monkeypatch.setattr(files, "_open_unnamed", lambda folder: None)
    return request.param


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_write_creates_and_replaces(tmp_path, temporaries):
    path = tmp_path / "out.json"
    write_atomic(str(path), "first\n")
    assert path.read_text() == "first\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    write_atomic(str(path), b"second \xce\xb1\n")
    assert path.read_bytes() == b"second \xce\xb1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file's mode is kept
    assert listing(tmp_path) == ["out.json"]


def test_what_the_folder_holds_while_writing(tmp_path, temporaries):
    if temporaries == "unnamed":
        probe = files._open_unnamed(str(tmp_path))
        if probe is None:
            pytest.skip("no unnamed files (O_TMPFILE) on this file system")
        os.close(probe)
    seen = []

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(b"{}")
        seen.append(listing(tmp_path))  # what a process killed now would leave

    replace_atomically(str(tmp_path / "a.json"), write)
    if temporaries == "unnamed":
        assert seen == [[]]
    else:
        assert len(seen[0]) == 1 and re.fullmatch(r"\.a\.json\.[0-9a-f]{8}\.tmp", seen[0][0])
    assert listing(tmp_path) == ["a.json"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give a file away")
def test_the_owner_is_kept(tmp_path, temporaries):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    os.chown(path, 4321, 4321)
    write_atomic(str(path), "[]")
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321) and path.read_text() == "[]"


def test_a_failing_write_keeps_the_old_file(tmp_path, temporaries):
    path = tmp_path / "report.json"
    path.write_text("old report\n")

    def half_then_full(temporary):
        with open(temporary, "wb") as file:
            file.write(b"new rep")
        raise OSError(28, "No space left on device")

    with pytest.raises(MnsizeError, match=r"report\.json: cannot write: No space left on device"):
        replace_atomically(str(path), half_then_full)
    assert path.read_text() == "old report\n"
    assert listing(tmp_path) == ["report.json"]


def test_a_failing_rename_keeps_the_old_file(tmp_path, monkeypatch, temporaries):
    path = tmp_path / "baseline.json"
    path.write_text("{}\n")

    def refuse(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(MnsizeError, match="baseline.json: cannot write: Input/output error"):
        write_atomic(str(path), "{\"new\": 1}\n")
    assert path.read_text() == "{}\n"
    assert listing(tmp_path) == ["baseline.json"]


def test_any_exception_from_the_writer_leaves_no_temporary_file(tmp_path, temporaries):
    path = tmp_path / "chart.svg"

    def broken(temporary):
        with open(temporary, "w") as file:
            file.write("<svg")
        raise ValueError("renderer failed")

    with pytest.raises(ValueError, match="renderer failed"):
        replace_atomically(str(path), broken)
    assert listing(tmp_path) == []


def test_a_link_is_written_through(tmp_path, temporaries):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "baseline.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomic(str(link), "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    dangling = tmp_path / "later.json"
    dangling.symlink_to(tmp_path / "real" / "made.json")
    write_atomic(str(dangling), "made\n")
    assert dangling.is_symlink() and (tmp_path / "real" / "made.json").read_text() == "made\n"
    assert listing(tmp_path / "real") == ["baseline.json", "made.json"]


def test_the_writer_refuses_what_is_not_a_file(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(MnsizeError, match="pipe.json: is a FIFO"):
        write_atomic(str(fifo), "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # not replaced by a file
    (tmp_path / "folder").mkdir()
    with pytest.raises(MnsizeError, match="is a folder"):
        write_atomic(str(tmp_path / "folder"), "x")
    assert (tmp_path / "folder").is_dir()


def test_same_file(tmp_path):
    (tmp_path / "sub").mkdir()
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets: []\n")
    (tmp_path / "link.yaml").symlink_to(budgets)
    os.link(budgets, tmp_path / "hard.yaml")
    (tmp_path / "other.yaml").write_text("budgets: []\n")
    assert same_file(str(tmp_path / "link.yaml"), str(budgets))
    assert same_file(str(tmp_path / "sub" / ".." / "budgets.yaml"), str(budgets))
    assert same_file(str(tmp_path / "hard.yaml"), str(budgets))
    assert not same_file(str(tmp_path / "other.yaml"), str(budgets))  # same text, another file
    # files that do not exist yet are compared by where they would be
    assert same_file(str(tmp_path / "sub" / ".." / "new.json"), str(tmp_path / "new.json"))
    (tmp_path / "new-link.json").symlink_to(tmp_path / "new.json")
    assert same_file(str(tmp_path / "new-link.json"), str(tmp_path / "new.json"))
    assert not same_file(str(tmp_path / "a.json"), str(tmp_path / "b.json"))


@pytest.mark.parametrize("case, expected", [
    ("folder", "is a folder"),
    ("fifo", "is a FIFO"),
    ("device", "is a device"),
    ("read-only", "the file is read-only"),
    ("missing folder", "no such folder"),
    ("under a file", "Not a directory"),
    ("an input", "would overwrite .*budgets.yaml, an input of this run"),
    ("another output", "given as two outputs of this run"),
])
def test_check_destination_refuses(tmp_path, case, expected):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets: []\n")
    path = tmp_path / "out.json"
    if case == "folder":
        path.mkdir()
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "device":
        path = "/dev/null"
    elif case == "read-only":
        path.write_text("kept\n")
        path.chmod(0o444)
    elif case == "missing folder":
        path = tmp_path / "no" / "out.json"
    elif case == "under a file":
        path = budgets / "out.json"
    elif case == "an input":
        path = tmp_path / "sub" / ".." / "budgets.yaml"
        (tmp_path / "sub").mkdir()
    with pytest.raises(MnsizeError, match=expected):
        check_destination(str(path), inputs=[str(budgets)],
                          outputs=[str(tmp_path / "out.json")] if case == "another output" else [])


def test_check_destination_accepts(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    check_destination(str(tmp_path / "old.json"), inputs=[str(tmp_path / "budgets.yaml"), None],
                      outputs=[str(tmp_path / "report.json"), None])
    check_destination(str(tmp_path / "new.json"))
    assert listing(tmp_path) == ["old.json"]  # checking writes nothing


def test_append(tmp_path, monkeypatch, temporaries):
    path = tmp_path / "summary.md"
    append_atomic(str(path), "| a |\n")
    append_atomic(str(path), "| β |\n")
    assert path.read_text(encoding="utf-8") == "| a |\n| β |\n"
    monkeypatch.setattr(files, "MAX_APPEND_BASE_BYTES", 8)
    with pytest.raises(MnsizeError, match="larger than 8 bytes"):
        append_atomic(str(path), "more\n")
    assert path.read_text(encoding="utf-8") == "| a |\n| β |\n"
    assert listing(tmp_path) == ["summary.md"]


def test_append_refuses_what_is_not_a_file_without_blocking(tmp_path):
    fifo = tmp_path / "summary"
    os.mkfifo(fifo)  # nothing ever writes to it: opening it to read must not wait
    with pytest.raises(MnsizeError, match="summary: is a FIFO"):
        append_atomic(str(fifo), "x")
    with pytest.raises(MnsizeError, match="is a folder"):
        append_atomic(str(tmp_path), "x")


# profile: what it may overwrite, checked before the timing and again before the write

PROFILE = {"format": "mnsize-profile/2", "written_by": "mnsize profile",
           "device": {"cpu": "test", "threads": 1},
           "model": {"ms_per": {"calls": 0.004}, "offset_ms": 0.5, "lanes": 16},
           "error": {"networks": 8, "held_out": 2, "held_out_median_error_pct": 3.0, "held_out_within_10pct": 1.0}}


class FakeCalibration:
    """Stands in for the minute of timing: returns a canned profile, records
    each call and runs ``meanwhile`` (another program at work) during it."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.meanwhile = None

    def __call__(self, threads=1, seconds=65, networks=None, tick=None, **kwargs) -> dict:
        self.calls.append(seconds)
        if self.meanwhile is not None:
            self.meanwhile()
        return dict(PROFILE)


@pytest.fixture
def calibrations(monkeypatch):
    from mnsize import calibrate

    fake = FakeCalibration()
    monkeypatch.setattr(calibrate, "calibrate", fake)
    return fake


def profile(*args):
    return CliRunner().invoke(cli, ["profile", "--seconds", "5", *args])


@pytest.mark.parametrize("text", [
    "# written_by: mnsize profile\nmine: true\n",
    "notes: 'copied from written_by: mnsize profile'\n",
    "written_by: mnsize profile\nformat: my-own/1\n",
    "- written_by: mnsize profile\n",
    "written_by: mnsize profile\nformat: mnsize-profile/2\n  bad: [\n",
])
def test_profile_refuses_a_file_that_only_mentions_it(tmp_path, calibrations, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = profile("--out", str(path))
    assert result.exit_code == 2 and "was not written by mnsize profile; give --force" in result.stderr
    assert path.read_text() == text and calibrations.calls == []


def test_profile_overwrites_its_own_file_of_any_format_version(tmp_path, calibrations):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**PROFILE, "format": "mnsize-profile/1"}))
    result = profile("--out", str(path))
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(path.read_text()) == PROFILE and calibrations.calls == [5.0]


def test_profile_refuses_a_read_only_file_before_timing(tmp_path, calibrations):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(PROFILE))
    path.chmod(0o444)
    result = profile("--out", str(path), "--force")
    assert result.exit_code == 2 and "p.yaml: cannot write: the file is read-only" in result.stderr
    assert calibrations.calls == []


@pytest.mark.parametrize("before", [None, "ours"])
def test_profile_rechecks_a_file_that_changed_while_timing(tmp_path, calibrations, before):
    path = tmp_path / "p.yaml"
    if before:
        path.write_text(yaml.safe_dump(PROFILE))
    calibrations.meanwhile = lambda: path.write_text("someone: else\n")
    result = profile("--out", str(path))
    assert result.exit_code == 2, result.stderr
    assert "p.yaml: exists (it changed while timing) and was not written by mnsize profile" in result.stderr
    assert path.read_text() == "someone: else\n" and calibrations.calls == [5.0]
    forced = profile("--out", str(path), "--force")
    assert forced.exit_code == 0 and yaml.safe_load(path.read_text()) == PROFILE


@pytest.mark.parametrize("seconds", ["nan", "NaN", "inf", "-inf"])
def test_profile_seconds_must_be_finite(tmp_path, calibrations, seconds):
    result = CliRunner().invoke(cli, ["profile", "--out", str(tmp_path / "p.yaml"), "--seconds", seconds])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "--seconds" in result.stderr and calibrations.calls == []
    assert listing(tmp_path) == []


def test_profile_writes_what_load_profile_reads(tmp_path, calibrations):
    path = tmp_path / "p.yaml"
    assert profile("--out", str(path)).exit_code == 0
    assert json.dumps(yaml.safe_load(path.read_text()), sort_keys=True) == json.dumps(PROFILE, sort_keys=True)
    assert listing(tmp_path) == ["p.yaml"]
