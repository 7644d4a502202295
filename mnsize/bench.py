"""Measuring latency on this machine, in one of mnsize.runtimes' runtimes;
mnsize.calibrate fits a profile to it.

Timing discipline: a fixed number of threads, BatchNorm folded into the
convolutions as any deployment does (a conv with a bias in place of conv +
BatchNorm), freed memory kept in the process (keep_freed_memory), a warm-up,
then timed runs. Runs are sampled by time rather than counted: a network is
timed in rounds of about the same length, and the medians of the rounds say
how steady the machine was (``Timing.round_spread``). Networks compared with
each other are timed in interleaved rounds, so that the machine's drift hits
them alike.

What mnsize calls a network's latency is the 10th percentile of its runs
(``Timing.latency_ms``), with the median and p90 beside it. On a shared
machine other work only ever adds to a run's time, in bursts, so the low end
of the runs is the network's own cost and the median is that plus however
busy the machine was: measured in separate processes on the 2-core machine of
docs/latency.md, p10 repeated about twice as closely as the median. A single
build of a network can also run a few per cent faster or slower than another
build of it, in another process or the same one (where its weights and
buffers happen to lie), so `bench` times INSTANCES builds in turns and pools
their runs.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import statistics
import sys
import time

from .bounds import MAX_BENCH_BYTES
from .crosscheck import forward_bytes
from .errors import MnsizeError
from .expand import Layer, deployed, expand
from .models import load_spec
from .runtimes import check_runtime, keep_freed_memory, prepare, session

__all__ = ["Timing", "keep_freed_memory", "memory_bytes", "summarise", "time_layers", "time_networks"]

#: rounds a single network's timing is split into, and the least warm-up
ROUNDS = 5
WARMUP_SECONDS = 0.2
#: the fewest timed runs in one round, however slow a run is
MIN_ROUND_RUNS = 3
#: builds of one network that time_layers times in turns (fewer where memory is short)
INSTANCES = 3


@dataclasses.dataclass(frozen=True)
class Timing:
    """Timed runs of one network, in milliseconds. ``round_spread`` is
    (max - min) / median of the rounds' medians: 0 for a single round."""

    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    round_spread: float = 0.0

    @property
    def latency_ms(self) -> float:
        """The network's latency as mnsize reports it and fits profiles to: p10."""
        return self.p10_ms

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how much the runs disagree."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms else 0.0


def summarise(samples_ms: list[float]) -> Timing:
    ordered = sorted(samples_ms)
    return Timing(len(ordered), statistics.median(ordered), ordered[int(0.1 * (len(ordered) - 1))],
                  ordered[round(0.9 * (len(ordered) - 1))])


def summarise_rounds(rounds: list[list[float]]) -> Timing:
    """All rounds' runs pooled, with the spread between the rounds' medians."""
    medians = [statistics.median(r) for r in rounds if r]
    middle = statistics.median(medians)
    between = (max(medians) - min(medians)) / middle if len(medians) > 1 and middle else 0.0
    return dataclasses.replace(summarise([ms for r in rounds for ms in r]), round_spread=between)


def memory_bytes(layers: tuple[Layer, ...], batch: int, threads: int = 1) -> int:
    """An upper bound of what timing ``layers`` (BatchNorm folded) adds to the
    process, with freed memory kept (mnsize.crosscheck.forward_bytes)."""
    return forward_bytes(deployed(layers), batch, folded=True, kept_by_threads=threads)


def _check_memory(layers: tuple[Layer, ...], batch: int, threads: int) -> int:
    """How many builds of ``layers`` fit in MAX_BENCH_BYTES, at most INSTANCES;
    an MnsizeError where not even one does."""
    need = memory_bytes(layers, batch, threads)
    if need > MAX_BENCH_BYTES:
        raise MnsizeError(f"this configuration may need {need / 2**30:,.1f} GiB for weights, activations and "
                          f"working memory; bench runs at most {MAX_BENCH_BYTES / 2**30:.0f} GiB")
    return max(1, min(INSTANCES, MAX_BENCH_BYTES // max(need, 1)))


def _build(runtime: str, layers: tuple[Layer, ...], input_shape, batch: int, threads: int):
    """One inference in ``runtime`` (mnsize.runtimes.session, which also keeps
    freed memory in the process); its memory was checked (_check_memory) before."""
    return session(runtime, layers, input_shape, threads, batch)


def _samples(run, runs: int, warmup: int = 0, tick=None) -> list[float]:
    """``runs`` timed calls of ``run`` after ``warmup`` untimed ones, in ms."""
    for _ in range(warmup):
        run()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        out.append((time.perf_counter() - start) * 1000)
        if tick is not None:
            tick()
    return out


def _samples_for(run, seconds: float) -> list[float]:
    """Timed calls of ``run`` for about ``seconds`` (at least MIN_ROUND_RUNS), in ms."""
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        run()
        end = time.perf_counter()
        out.append((end - start) * 1000)
        if end >= deadline and len(out) >= MIN_ROUND_RUNS:
            return out


def _warm_up(run, runs: int, seconds: float) -> None:
    """At least ``runs`` calls, and calls for at least ``seconds``: caches,
    allocator and the runtime's lazy set-up settled before anything is timed."""
    start, done = time.perf_counter(), 0
    while done < runs or time.perf_counter() - start < seconds:
        run()
        done += 1


def time_layers(layers: tuple[Layer, ...], input_shape: tuple[int, int, int], threads: int = 1, batch: int = 1,
                runs: int | None = None, warmup: int = 10, tick=None, runtime: str = "torch",
                seconds: float = 2.0) -> Timing:
    """Latency of the whole network (BatchNorm folded) on this machine.

    INSTANCES builds of the network (fewer where memory is short) are timed in
    turns within each round, their runs pooled. By default each build is warmed
    up for at least ``warmup`` runs and WARMUP_SECONDS, then ROUNDS rounds
    of about ``seconds / ROUNDS`` each are timed. ``runs`` fixes the count
    instead: ``warmup`` runs per build, then ``runs`` timed runs shared out
    over the rounds and builds. ``tick(share)``, if given, is called as the
    timing advances, with shares that add up to 1."""
    check_runtime(runtime)
    if runs is None and not seconds > 0:
        raise MnsizeError(f"seconds must be above 0, got {seconds!r}")
    count = _check_memory(layers, batch, threads)
    builds = [_build(runtime, layers, input_shape, batch, threads) for _ in range(count)]
    for run in builds:
        _warm_up(run, warmup, WARMUP_SECONDS if runs is None else 0.0)
    rounds: list[list[float]] = []
    if runs is None:
        for _ in range(ROUNDS):
            rounds.append([ms for run in builds for ms in _samples_for(run, seconds / ROUNDS / count)])
            if tick is not None:
                tick(1 / ROUNDS)
    else:
        slots = min(ROUNDS * count, runs)
        sizes = [runs // slots + (i < runs % slots) for i in range(slots)]
        step = (lambda: tick(1 / runs)) if tick else None
        for first in range(0, slots, count):
            rounds.append([ms for i in range(first, min(first + count, slots))
                           for ms in _samples(builds[i % count], sizes[i], tick=step)])
    return summarise_rounds(rounds)


#: how many networks time_networks holds at once: eager torch, and a compiled runtime, whose sessions hold
#: more (a default onnxruntime profile peaked at 786 MiB with 8 at a time, 498 MiB with 3: docs/latency.md)
GROUP = 8
COMPILED_GROUP = 3


def time_networks(configs: list[tuple], threads: int, seconds: float, rounds: int = 6, tick=None,
                  runtime: str = "torch") -> list[Timing]:
    """The latency of each (model, alpha, resolution), timed in interleaved
    rounds within about ``seconds``; each network's runs pooled over the rounds.
    A resolution is a side (square) or (H, W). Networks are built and timed
    GROUP at a time (COMPILED_GROUP in onnxruntime and OpenVINO): the rounds
    interleave the networks of a group. Where the system has fork (FORK), each
    group is timed in a child process forked from this one (_forked says why)."""
    check_runtime(runtime)
    networks = []
    for name, alpha, res in configs:  # every one checked before any is built or timed
        spec = load_spec(name)
        hw = (res, res) if isinstance(res, int) else tuple(res)
        layers = expand(spec, alpha, hw)
        try:
            _check_memory(layers, 1, threads)
        except MnsizeError as exc:
            raise MnsizeError(f"{spec.name} α {float(alpha):g} {hw[0]}×{hw[1]}: {exc}") from None
        networks.append((spec, hw, layers))
    prepare(runtime)  # a missing runtime refuses before anything is built; the children inherit its imports
    timed: list[list[list[float]]] = []
    group = GROUP if runtime == "torch" else COMPILED_GROUP
    # GROUP networks at a time are built, timed in interleaved rounds and let go, so
    # that a calibration's memory is a group's, not the sum of its 112 networks'
    for start in range(0, len(networks), group):
        def work(step, chosen=networks[start:start + group]):
            return _time_group(chosen, runtime, threads, seconds, rounds, len(configs), step)
        if FORK:
            timed += _forked(work, tick)
        else:
            timed += work(tick)
            gc.collect()  # the group let go here; a forked child's memory goes with it
    return [summarise_rounds(network_rounds) for network_rounds in timed]


def _time_group(networks, runtime: str, threads: int, seconds: float, rounds: int, total: int, tick):
    """Each network's rounds of runs, in ms: the networks built, then timed in interleaved rounds."""
    built = []
    for spec, hw, layers in networks:
        run = _build(runtime, layers, (spec.in_channels, *hw), 1, threads)
        first = statistics.median(_samples(run, runs=2, warmup=1))
        runs = max(3, int(seconds * 1000 / (rounds * total) / max(first, 1e-3)))
        built.append((run, runs))
    timed: list[list[list[float]]] = [[] for _ in built]
    for _ in range(rounds):
        for network_rounds, (run, runs) in zip(timed, built):
            network_rounds.append(_samples(run, runs, warmup=1))
            if tick is not None:
                tick(1 / (rounds * total))
    return timed


#: whether time_networks times each group in a child process forked from this one (where the system has fork)
FORK = hasattr(os, "fork") and sys.platform.startswith("linux")


def _forked(work, tick):
    """``work(tick)`` run in a child process forked from this one, its result
    (plain lists and numbers) sent back through a pipe, and its ticks too.

    Why: eager PyTorch runs slower and slower in a process that has built
    and let go of network after network with freed memory kept (on the
    machine of docs/latency.md, the validation networks ran a median 17%
    slower after the 112 calibration networks than before them, up to 37%:
    benchmarks/process_age.py), while `bench` times a network in a process
    of its own. A child forked before
    any network is built starts from this process's young memory, as `bench`
    does, whatever groups came before it. An error in the child is raised
    here: MnsizeError, MemoryError and KeyboardInterrupt as they were,
    anything else as a RuntimeError naming it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        try:
            with os.fdopen(write_end, "w") as out:
                def step(share):
                    out.write(f"tick {share!r}\n")
                    out.flush()
                try:
                    out.write(f"done {json.dumps(work(step if tick is not None else None))}\n")
                except BaseException as exc:  # sent to the parent, which raises it
                    out.write(f"error {json.dumps([type(exc).__name__, str(exc)])}\n")
        finally:
            os._exit(0)
    os.close(write_end)
    result = failure = None
    try:
        with os.fdopen(read_end) as lines:
            for line in lines:
                kind, _, rest = line.partition(" ")
                if kind == "tick" and tick is not None:
                    tick(float(rest))
                elif kind == "done":
                    result = json.loads(rest)
                elif kind == "error":
                    failure = json.loads(rest)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
    if failure is not None:
        name, message = failure
        if name == "KeyboardInterrupt":  # ^C reaches the child too
            raise KeyboardInterrupt
        raise (MnsizeError(message) if name == "MnsizeError" else MemoryError(message) if name == "MemoryError"
               else RuntimeError(f"{name}: {message} (in the process that timed the networks)"))
    if result is None:
        raise MnsizeError(f"the process that timed the networks ended without a result ({_ended(status)}); "
                          "the system may have stopped it for want of memory")
    return result


def _ended(status: int) -> str:
    """How a child process ended, from its wait status."""
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"

