"""Failure injection: every file mnsize reads and every file it writes, through
the real command line in a child process.

Writers (check --output, check --write-baseline, the GitHub step summary,
plot --out, profile --out) meet a full disk, a process killed in the middle
of its write, and destinations that are not writable files. Readers (a spec, a
budgets file, a budget's model, a baseline, a profile) meet what a crash or a
careless user leaves: FIFOs, folders, devices, empty and truncated files.

A full disk is a file-size limit (RLIMIT_FSIZE): past it every write fails
with EFBIG as it would with ENOSPC. With SIGXFSZ at its default action (Python
ignores it, so the child restores it) the same limit kills the process in the
middle of its write instead. In every case: exit status 2 and one line on
stderr (or death by the signal), the previous file byte for byte as it was,
and no temporary file left in the folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mnsize

resource = pytest.importorskip("resource", reason="limits on a child process as POSIX has them")

#: small enough that any report, baseline, profile or picture crosses it
FILE_LIMIT_BYTES = 64
#: a reader that slurps a device runs out of memory here, not the machine
MEMORY_LIMIT_BYTES = 2 * 2**30
#: a FIFO read must be refused at once; waiting this long means it hung
TIMEOUT_S = 20

# What `python -m mnsize` runs, with two optional injections set by the test:
# die at the file-size limit, and a canned calibration in place of profile's
# minute of timing.
RUNNER = """
import json, os, runpy, signal, sys
if os.environ.get("MNSIZE_TEST_DIE_AT_LIMIT"):
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
canned = os.environ.get("MNSIZE_TEST_CALIBRATION")
if canned:
    import mnsize.calibrate
    mnsize.calibrate.calibrate = lambda *args, **kwargs: json.loads(canned)
sys.argv[0] = "mnsize"
runpy.run_module("mnsize", run_name="__main__", alter_sys=True)
"""

PROFILE = {"format": "mnsize-profile/2", "written_by": "mnsize profile",
           "device": {"cpu": "test", "threads": 1, "torch": "none", "date": "2026-11-21"},
           "model": {"ms_per": {"compute_madds": 2e-8, "compute_bytes": 1e-7, "weight_bytes": 2e-7,
                                "depthwise_bytes": 3e-7, "depthwise_unaligned_bytes": 6e-7, "other_bytes": 5e-8,
                                "elementwise": 4e-7, "calls": 0.004, "depthwise_calls": 0.012},
                     "offset_ms": 0.5, "lanes": 16},
           "error": {"networks": 8, "held_out": 2, "held_out_median_error_pct": 3.0, "held_out_within_10pct": 1.0}}
OLD_PROFILE = yaml.safe_dump({**PROFILE, "device": {**PROFILE["device"], "date": "2025-01-01"}}).encode()
OLD_BASELINE = b'{"format": "mnsize-baseline/1", "budgets": {"old": {"madds": 1}}}\n'
AD_HOC = ["check", "--model", "mobilenet_v1", "--alpha", "0.25", "--res", "128", "--max-madds", "100M"]


def environment(extra: dict | None = None) -> dict:
    """The child's: this mnsize, no bytecode files written under a limit, and
    never the step summary of the CI job running these tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(PYTHONPATH=os.path.dirname(os.path.dirname(mnsize.__file__)), PYTHONDONTWRITEBYTECODE="1",
               **(extra or {}))
    return env


def mnsize_run(*args: str, cwd: Path, file_limit: int | None = None, die_at_limit: bool = False,
               calibration: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the command line in a child, as `python -m mnsize` does, with the
    injected failure; a child that hangs fails the test."""
    child_env = environment(env)
    if die_at_limit:
        child_env["MNSIZE_TEST_DIE_AT_LIMIT"] = "1"
    if calibration:
        child_env["MNSIZE_TEST_CALIBRATION"] = json.dumps(PROFILE)

    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    command = [sys.executable, "-c", RUNNER, *args] if die_at_limit or calibration else [
        sys.executable, "-m", "mnsize", *args]
    try:
        return subprocess.run(command, cwd=cwd, env=child_env, preexec_fn=limits, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mnsize {' '.join(args)} still running after {TIMEOUT_S} s")


def assert_one_line(proc: subprocess.CompletedProcess, *, status: int = 2, names: str | None = None) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert proc.returncode == status and len(lines) == 1, (proc.returncode, proc.stderr)
    if names is not None:
        assert names in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> dict[str, tuple]:
    """Each entry of a folder as it is on disk, down to its contents' last change."""
    return {p.name: (p.lstat().st_ino, p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.iterdir()}


def assert_no_leftovers(folder: Path, name: str, killed: bool = False) -> None:
    others = [entry for entry in os.listdir(folder) if entry != name]
    if killed and not unnamed_files(folder):  # nothing cleans up after a killed process: a named temporary stays
        assert all(entry.endswith(".tmp") for entry in others), others
    else:
        assert others == []


def unnamed_files(folder: Path) -> bool:
    """Whether the folder's file system has files with no name (Linux's
    O_TMPFILE), which vanish with a killed process."""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY))
    except (AttributeError, OSError):
        return False
    return True


@pytest.fixture
def work(tmp_path):
    """A folder for the child to run in, and one for what it writes (listed whole)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path / "run", tmp_path / "out"


@pytest.fixture(scope="module")
def matplotlib_ready():
    """matplotlib writes a font cache the first time it runs: not under a file-size limit."""
    pytest.importorskip("matplotlib.font_manager", reason="plot --out needs matplotlib")


# the writers: (name, the file they write, the old content there, its command line)
WRITERS = {
    "check --output": ("report.json", b'{"old": "report"}\n', [*AD_HOC, "--format", "json", "--output"]),
    "check --write-baseline": ("baseline.json", OLD_BASELINE, [*AD_HOC, "--write-baseline"]),
    "plot --out": ("chart.png", b"\x89PNG an older picture", ["plot", "--out"]),
    "profile --out": ("profile.yaml", OLD_PROFILE, ["profile", "--seconds", "5", "--out"]),
}
WRITERS_OLD = {file_name: old for file_name, old, _ in WRITERS.values()}


def writer(name: str, out: Path, request) -> tuple[Path, bytes, list[str], bool]:
    file_name, old, args = WRITERS[name]
    if name == "plot --out":
        request.getfixturevalue("matplotlib_ready")
    path = out / file_name
    path.write_bytes(old)
    return path, old, [*args, str(path)], name == "profile --out"


@pytest.mark.parametrize("name", WRITERS)
def test_full_disk_keeps_the_old_file(work, name, request):
    run, out = work
    path, old, args, calibration = writer(name, out, request)
    proc = mnsize_run(*args, cwd=run, file_limit=FILE_LIMIT_BYTES, calibration=calibration)
    assert_one_line(proc, names=path.name)
    assert "File too large" in proc.stderr
    assert path.read_bytes() == old
    assert_no_leftovers(out, path.name)


@pytest.mark.parametrize("name", WRITERS)
def test_killed_mid_write_keeps_the_old_file(work, name, request):
    run, out = work
    path, old, args, calibration = writer(name, out, request)
    # the same limit as on the full disk above, where the one line names the file: that write is where it dies
    proc = mnsize_run(*args, cwd=run, file_limit=FILE_LIMIT_BYTES, die_at_limit=True, calibration=calibration)
    assert proc.returncode == -signal.SIGXFSZ, (proc.returncode, proc.stderr)
    assert path.read_bytes() == old
    assert_no_leftovers(out, path.name, killed=True)


DESTINATIONS = ["a full device", "a folder", "a FIFO", "a read-only file", "a missing folder"]


def destination(case: str, out: Path, file_name: str) -> Path:
    path = out / file_name
    if case == "a full device":
        path.symlink_to("/dev/full")  # through a link: plot wants the picture's extension
    elif case == "a folder":
        path.mkdir()
    elif case == "a FIFO":
        os.mkfifo(path)
    elif case == "a read-only file":
        path.write_bytes(WRITERS_OLD[file_name])
        path.chmod(0o444)
    else:
        path = out / "missing" / file_name
    return path


@pytest.mark.parametrize("case", DESTINATIONS)
@pytest.mark.parametrize("name", WRITERS)
def test_unwritable_destinations_are_refused_before_any_work(work, name, case):
    run, out = work
    file_name, _, args = WRITERS[name]
    path = destination(case, out, file_name)
    before = listing(out)
    side = out / "side.json"  # a second output of the same run, which must not be written either
    extra = ["--write-baseline", str(side)] if name == "check --output" else (
        ["--format", "json", "--output", str(side)] if name == "check --write-baseline" else [])
    proc = mnsize_run(*args, str(path), *extra, cwd=run, calibration=name == "profile --out")
    assert_one_line(proc, names=file_name)
    assert "wrote" not in proc.stderr
    assert listing(out) == before
    if case == "a read-only file":
        assert path.read_bytes() == WRITERS_OLD[file_name]


def test_step_summary_on_a_full_disk_is_a_warning(work):
    run, out = work
    summary = out / "summary.md"
    summary.write_bytes(b"## an earlier step\n")
    proc = mnsize_run(*AD_HOC, "--format", "github", cwd=run, file_limit=FILE_LIMIT_BYTES,
                      env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stderr  # the verdict: every budget holds
    assert "Traceback" not in proc.stderr and "summary.md" in proc.stderr
    assert summary.read_bytes() == b"## an earlier step\n"
    assert_no_leftovers(out, "summary.md")


def test_step_summary_killed_mid_write(work):
    run, out = work
    summary = out / "summary.md"
    summary.write_bytes(b"## an earlier step\n")
    proc = mnsize_run(*AD_HOC, "--format", "github", cwd=run, file_limit=FILE_LIMIT_BYTES, die_at_limit=True,
                      env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == -signal.SIGXFSZ, (proc.returncode, proc.stderr)
    assert summary.read_bytes() == b"## an earlier step\n"
    assert_no_leftovers(out, "summary.md", killed=True)


def test_parallel_baseline_writers_never_show_a_partial_file(work):
    """20 writers replace one baseline while this process reads it in a loop:
    every read is a whole JSON document, the old one or a new one."""
    run, out = work
    path = out / "baseline.json"
    path.write_bytes(OLD_BASELINE)
    writers = [subprocess.Popen([sys.executable, "-m", "mnsize", "check", "--model", "mobilenet_v1", "--alpha", alpha,
                                 "--max-madds", "600M", "--write-baseline", str(path)],
                                cwd=run, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for alpha in ("0.25", "0.5", "0.75", "1.0") * 5]
    reads, bad = 0, []
    try:
        while any(w.poll() is None for w in writers):
            data = path.read_bytes()
            reads += 1
            try:
                json.loads(data)
            except ValueError:
                bad.append(data[:40])
    finally:
        for w in writers:
            w.wait(TIMEOUT_S)
    assert [w.returncode for w in writers] == [0] * 20, [w.stderr.read() for w in writers if w.returncode]
    assert reads > 0 and bad == [], f"{len(bad)} of {reads} reads were not a whole file: {bad[:3]}"
    assert json.loads(path.read_bytes())["budgets"]  # the last writer's baseline
    assert_no_leftovers(out, "baseline.json")


# the readers: what each command reads, and how to make it read `path`
READERS = {
    "a spec": lambda path, folder: ["table", "--model", str(path)],
    "a budgets file": lambda path, folder: ["check", str(path)],
    "a budget's model": lambda path, folder: ["check", str(_budgets_naming(path, folder))],
    "a baseline": lambda path, folder: [*AD_HOC, "--baseline", str(path), "--max-growth", "5%"],
    "a profile": lambda path, folder: ["latency", "--profile", str(path)],
}


def _budgets_naming(model: Path, folder: Path) -> Path:
    budgets = folder / "budgets.yaml"
    budgets.write_text(f"budgets:\n  - name: b\n    model: {json.dumps(str(model))}\n    max_madds: 100M\n")
    return budgets


def source(case: str, folder: Path) -> Path:
    path = folder / "input"
    if case == "a FIFO":
        os.mkfifo(path)
    elif case == "a folder":
        path.mkdir()
    elif case == "a device":
        path = Path("/dev/zero")
    else:
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("case", ["a FIFO", "a folder", "a device", "an empty file"])
@pytest.mark.parametrize("reader", READERS)
def test_unreadable_inputs_are_refused_at_once(work, reader, case):
    run, out = work
    path = source(case, out)
    proc = mnsize_run(*READERS[reader](path, out), cwd=run)
    assert_one_line(proc, names=path.name)
    assert proc.stdout == ""


def test_a_truncated_baseline_is_refused(work):
    run, out = work
    good = out / "good.json"
    assert mnsize_run(*AD_HOC, "--write-baseline", str(good), cwd=run).returncode == 0
    cut = out / "cut.json"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # what a writer killed halfway leaves
    proc = mnsize_run(*AD_HOC, "--baseline", str(cut), "--max-growth", "5%", cwd=run)
    assert_one_line(proc, names="cut.json")
