"""Shared whole-process timing for the benchmarks: commands run in turns
(interleaved) after warm-up rounds, so that machine noise hits each alike;
p10, median and p90 of the wall time and the median peak memory of each
process, printed as Markdown.

`Trees` says where the mnsize commands run from: this environment's console
script, or, given another source tree (a benchmark's `--against TREE`, say an
untouched copy of an earlier version), this checkout and that tree in the same
rounds, both the same way: `python -m mnsize` with PYTHONPATH set to the tree,
from a scratch working directory outside both, byte-code compiled for both.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

BIN = Path(sys.executable).parent
MNSIZE = str(BIN / "mnsize")
THIS_TREE = Path(__file__).resolve().parent.parent
# Measure what an installation does: byte-code cached in __pycache__ (pip
# compiles installed packages; an editable checkout caches on first run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Run:
    """One command line, its environment and working directory."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: ENV)
    cwd: str | None = None


def compile_mnsize() -> None:
    import compileall

    import mnsize

    compileall.compile_dir(str(Path(mnsize.__file__).parent), quiet=1)


# Runs one command, forked from this small interpreter (python -I -S, about 5
# MiB), and prints its wall milliseconds, ru_maxrss and exit status. A process's
# ru_maxrss counts the memory of the one it was forked from, as it stood before
# the exec; forked from the benchmark itself (about 20 MiB) every command would
# read at least that.
_LAUNCHER = """\
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print((time.perf_counter() - start) * 1000, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(run: Run) -> tuple[float, float | None]:
    """Wall milliseconds and peak resident MiB of one process (None where there is no fork)."""
    if not (hasattr(os, "fork") and hasattr(os, "wait4")):
        start = time.perf_counter()
        code = subprocess.run(run.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=run.env, cwd=run.cwd).returncode
        wall_ms, peak_mib = (time.perf_counter() - start) * 1000, None
    else:
        report = subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, *run.argv], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, env=run.env, cwd=run.cwd)
        if report.returncode != 0:
            raise SystemExit(f"timing {' '.join(run.argv)} failed: {report.stderr.strip()}")
        wall, maxrss, code = report.stdout.split()
        # ru_maxrss is in kilobytes on Linux, in bytes on macOS
        wall_ms, peak_mib = float(wall), int(maxrss) / (2**20 if platform.system() == "Darwin" else 2**10)
    if int(code) != 0:
        path = f"PYTHONPATH={run.env['PYTHONPATH']} " if run.env.get("PYTHONPATH") != ENV.get("PYTHONPATH") else ""
        raise SystemExit(f"{path}{' '.join(run.argv)} (in {run.cwd or os.getcwd()}) exited {code}")
    return wall_ms, peak_mib


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Trees:
    """Where mnsize commands run from: this environment's console script, or,
    with ``against``, `python -m mnsize` from this checkout and from ``against``.

    In the second case each tree's byte-code is compiled into a scratch folder
    (PYTHONPYCACHEPREFIX, which every run reads), so that neither tree is
    written to and both load alike.
    """

    def __init__(self, against: str | None = None):
        self.labels = [""]
        self._envs: list[dict[str, str]] = []
        if against is None:
            return
        other = Path(against).resolve()
        if not (other / "mnsize" / "__init__.py").is_file():
            raise SystemExit(f"--against {against}: no mnsize package there (mnsize/__init__.py)")
        self._scratch = tempfile.TemporaryDirectory(prefix="mnsize-timing-")
        scratch = Path(self._scratch.name)
        self.cwd = scratch / "cwd"
        self.cwd.mkdir()
        self.labels = [str(THIS_TREE), str(other)]
        if other == THIS_TREE:  # a tree against itself: two sets of figures all the same
            self.labels = [f"{THIS_TREE} (1)", f"{THIS_TREE} (2)"]
        for root in (THIS_TREE, other):
            env = {**ENV, "PYTHONPATH": str(root), "PYTHONPYCACHEPREFIX": str(scratch / "pycache")}
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "mnsize")], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            self._envs.append(env)

    def mnsize(self, *args: str) -> dict[str, Run]:
        """`mnsize ARGS` in each tree, by label."""
        if not self._envs:
            return {"": Run([MNSIZE, *args])}
        return {label: Run([sys.executable, "-m", "mnsize", *args], env, str(self.cwd))
                for label, env in zip(self.labels, self._envs)}

    def warmup_rounds(self, warmup: int) -> int:
        # the scratch byte-code cache is filled (standard library included) by the first run
        return max(warmup, 1) if self._envs else warmup


def measure(commands: dict[str, list[str] | dict[str, Run]], runs: int, warmup: int,
            trees: Trees | None = None) -> dict[str, float]:
    """Time every command ``runs`` times in turns; print the table; return the
    medians (ms), of this tree's run where a command runs from two trees.

    A command is a whole command line, run as it is, or the runs of one mnsize
    command by tree (`Trees.mnsize`).
    """
    trees = trees or Trees()
    plan = {name: ({"": Run(cmd)} if isinstance(cmd, list) else cmd) for name, cmd in commands.items()}
    if trees.labels == [""]:
        compile_mnsize()
    warmup = trees.warmup_rounds(warmup)
    for _ in range(warmup):
        for by_tree in plan.values():
            for run in by_tree.values():
                run_once(run)
    wall: dict[tuple[str, str], list[float]] = {(name, label): [] for name, by_tree in plan.items()
                                                 for label in by_tree}
    peak: dict[tuple[str, str], list[float]] = {key: [] for key in wall}
    for round_ in range(runs):
        for name, by_tree in plan.items():
            order = list(by_tree.items())
            for label, run in order if round_ % 2 == 0 else order[::-1]:  # trees take turns going first
                wall_ms, peak_mib = run_once(run)
                wall[name, label].append(wall_ms)
                if peak_mib is not None:
                    peak[name, label].append(peak_mib)
    _print(wall, peak, runs, warmup, trees)
    first = trees.labels[0]
    return {name: statistics.median(values) for (name, label), values in wall.items() if label in ("", first)}


def _print(wall, peak, runs: int, warmup: int, trees: Trees) -> None:
    two = trees.labels != [""]
    how = "python -m mnsize from each tree, trees taking turns" if two else "the mnsize console script"
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{runs} runs each, interleaved, after {warmup} warm-up round(s) · {how}\n")
    if two:
        print("\n".join(f"- tree {n}: {label}" for n, label in enumerate(trees.labels, 1)) + "\n")
    print(f"| command |{' tree |' if two else ''} median ms | p10 ms | p90 ms | peak MiB |")
    print(f"|---|{'---|' if two else ''}---:|---:|---:|---:|")
    for (name, label), values in wall.items():
        tree = f" {trees.labels.index(label) + 1 if label else '-'} |" if two else ""
        mib = f"{statistics.median(peak[name, label]):.1f}" if peak[name, label] else "-"
        print(f"| {name} |{tree} {statistics.median(values):.1f} | {quantile(values, 0.1):.1f} | "
              f"{quantile(values, 0.9):.1f} | {mib} |")
    print()


def has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
