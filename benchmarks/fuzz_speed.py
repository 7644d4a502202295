"""How fast bad input is refused: every adversarial case of tests/test_fuzz.py
(alias bombs, deep nesting, 100,000-entry lists, huge numbers, Python tags,
non-UTF-8 ...) as a whole `mnsize table` and `mnsize check` process.

Target: every refusal (exit 2, one line on stderr) within 1 s.

    python benchmarks/fuzz_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import ENV, MNSIZE, compile_mnsize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_fuzz import ADVERSARIAL  # noqa: E402


def main() -> None:
    compile_mnsize()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case, content in sorted(ADVERSARIAL.items()):
            for command in ("table", "check"):
                path = Path(folder) / f"{command}.yaml"
                if isinstance(content, bytes):
                    path.write_bytes(content if command == "table" else content.replace(b"layers", b"budgets"))
                else:
                    path.write_text(content if command == "table" else content.replace("layers", "budgets"))
                args = ["table", "--model", str(path)] if command == "table" else ["check", str(path)]
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    proc = subprocess.run([MNSIZE, *args], capture_output=True, text=True, env=ENV, timeout=60)
                    times.append((time.perf_counter() - start) * 1000)
                lines = proc.stderr.splitlines()
                rows.append((case, command, proc.returncode, len(lines), statistics.median(times)))
    print("| input | command | exit | stderr lines | median ms |")
    print("|---|---|---:|---:|---:|")
    for case, command, code, lines, ms in rows:
        print(f"| {case} | {command} | {code} | {lines} | {ms:.0f} |")
    slowest = max(rows, key=lambda r: r[4])
    print(f"\n{len(rows)} runs; slowest: {slowest[0]} ({slowest[1]}) at {slowest[4]:.0f} ms "
          f"(target <= 1000 ms): {'met' if slowest[4] <= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
