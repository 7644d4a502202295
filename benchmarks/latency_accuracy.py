"""How well a latency profile predicts networks it was not fitted to.

Times the 112 calibration networks of `mnsize profile` and 24 other
configurations (V1, V2, V3 at alphas outside the calibration set) in the same
interleaved rounds, so that the machine's drift hits both alike, with freed
memory kept in the process as `mnsize bench` and `profile` do; fits the
profile on the calibration networks only; then compares predicted and
measured medians on the 24. Prints each, the share within
+-10%, the mean absolute % error, and the same for the naive predictor
"latency proportional to mult-adds" fitted on the same calibration timings.

Target: >= 90% of the configurations within +-10% on this 2-core machine.

    python benchmarks/latency_accuracy.py [--seconds 150] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from datetime import date

from mnsize.bench import time_networks
from mnsize.calibrate import CALIBRATION_NETWORKS, features_of, fit_costs, grid_configs, vector_lanes
from mnsize.costs import count
from mnsize.expand import expand
from mnsize.models import load_spec

CHECKED = (grid_configs("mobilenet_v1", "0.35 0.6 0.9 1.2", (128, 192, 256))
           + grid_configs("mobilenet_v2", "0.5 0.9 1.2", (128, 192))
           + grid_configs("mobilenet_v3_large", "0.75", (160, 192))
           + grid_configs("mobilenet_v3_small", "0.75 1.25", (160, 192)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    assert not set(CHECKED) & set(CALIBRATION_NETWORKS)
    configs = list(CALIBRATION_NETWORKS) + list(CHECKED)
    timings = time_networks(configs, args.threads, args.seconds)
    measured = {config: t.median_ms for config, t in zip(configs, timings)}
    lanes = vector_lanes()
    rows = [features_of(c, lanes) for c in CALIBRATION_NETWORKS]
    coef = fit_costs(rows, [measured[c] for c in CALIBRATION_NETWORKS])
    madds = {c: count(expand(load_spec(c[0]), c[1], c[2])).madds for c in configs}
    per_madd = (sum(measured[c] * madds[c] for c in CALIBRATION_NETWORKS)
                / sum(madds[c] ** 2 for c in CALIBRATION_NETWORKS))

    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · {args.threads} thread(s) · "
          f"{len(CALIBRATION_NETWORKS)} calibration networks, {len(CHECKED)} checked, timed together; "
          f"{lanes} vector lanes\n")
    print("| model | α | res | measured ms | predicted ms | error | mult-adds model ms | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    errors, naive_errors = [], []
    for c in CHECKED:
        predicted = sum(a * x for a, x in zip(coef, features_of(c, lanes)))
        naive = per_madd * madds[c]
        e, n = (predicted - measured[c]) / measured[c], (naive - measured[c]) / measured[c]
        errors.append(abs(e))
        naive_errors.append(abs(n))
        print(f"| {c[0]} | {c[1]} | {c[2]} | {measured[c]:.2f} | {predicted:.2f} | {100 * e:+.1f}% | "
              f"{naive:.2f} | {100 * n:+.1f}% |")
    within = sum(e <= 0.10 for e in errors) / len(errors)
    print(f"\nprofile: {100 * within:.0f}% within ±10%, mean absolute error {100 * statistics.mean(errors):.1f}% "
          f"(target ≥ 90% within ±10%: {'met' if within >= 0.9 else 'NOT met'})")
    naive_within = sum(e <= 0.10 for e in naive_errors) / len(naive_errors)
    print(f"latency ∝ mult-adds: {100 * naive_within:.0f}% within ±10%, mean absolute error "
          f"{100 * statistics.mean(naive_errors):.1f}%")


if __name__ == "__main__":
    main()
