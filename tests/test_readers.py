"""Every file mnsize reads, read by someone hostile or careless: documents
that crash a YAML composer, keys given twice, YAML 1.1 number forms, numbers
too long to convert, FIFOs and devices, tampered profiles and baselines.
Each is refused with exit status 2 and one line naming the file."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
from fractions import Fraction

import pytest
import yaml
from click.testing import CliRunner

from mnsize.cli import cli

HEADER = "name: tiny\nsource: test\ninput: {channels: 3, resolution: 32}\nwidth: floor\nclasses: 10\n"
SPEC = HEADER + "layers:\n  - {kind: conv, kernel: 3, out: 8, stride: 2}\n  - avgpool\n  - fc\n"
BUDGET = "budgets:\n  - name: phone\n    model: mobilenet_v1\n    alpha: 0.5\n    max_madds: 150M\n"
PROFILE = {"format": "mnsize-profile/2", "written_by": "mnsize profile",
           "device": {"cpu": "test", "threads": 1, "torch": "none", "date": "2026-11-21"},
           "model": {"ms_per": {"compute_madds": 2e-8, "compute_bytes": 1e-7, "weight_bytes": 2e-7,
                                "depthwise_bytes": 3e-7, "depthwise_unaligned_bytes": 6e-7, "other_bytes": 5e-8,
                                "elementwise": 4e-7, "calls": 0.004, "depthwise_calls": 0.012},
                     "offset_ms": 0.5, "lanes": 16}}


posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, sockets and /dev are POSIX's")


def run(folder, *args):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)


def refused(result, *fragments) -> str:
    """The one stderr line of an exit-2 refusal, holding every fragment."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    for fragment in fragments:
        assert fragment in line, line
    return line


def process(folder, *args, timeout=30):
    """mnsize as its own process, whichever copy PYTHONPATH names: a crash
    or a hang cannot take the test run down with it."""
    return subprocess.run([sys.executable, "-m", "mnsize", *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)


# --------------------------------------------------------------------------- nesting


DEEP = {
    "compact sequences": "- " * 30_000 + "x\n",
    "question-mark keys": "? " * 30_000 + "\n",
    "flow brackets after a # in a plain scalar": "x: [a#b, " + "[" * 20_000 + "]" * 20_000 + "]\n",
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting_that_dodges_a_text_scan_is_refused(tmp_path, case):
    (tmp_path / "spec.yaml").write_text(DEEP[case])
    proc = process(tmp_path, "table", "--model", "spec.yaml")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-300:])
    (line,) = proc.stderr.splitlines()
    assert "spec.yaml:" in line and "nested more than 64 levels" in line


def test_deep_nesting_is_refused_in_budgets_and_profiles(tmp_path):
    (tmp_path / "budgets.yaml").write_text("budgets:\n" + "  - " + "- " * 30_000 + "x\n")
    (tmp_path / "profile.yaml").write_text("? " * 30_000 + "\n")
    for args in (["check", "budgets.yaml"], ["latency", "--profile", "profile.yaml"]):
        proc = process(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr[-300:])
        assert "nested more than 64 levels" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_depth_64_loads_and_65_does_not():
    from mnsize.errors import FileError
    from mnsize.yamlio import load_yaml

    data, _ = load_yaml("- " * 64 + "x\n", "f.yaml")
    for _ in range(64):
        (data,) = data
    assert data == "x"
    with pytest.raises(FileError, match="nested more than 64 levels"):
        load_yaml("- " * 65 + "x\n", "f.yaml")
    # the top-level mapping is the first level
    assert load_yaml("a: " + "{b: " * 63 + "c" + "}" * 63 + "\n", "f.yaml")[0]
    with pytest.raises(FileError, match="nested more than 64 levels"):
        load_yaml("a: " + "{b: " * 64 + "c" + "}" * 64 + "\n", "f.yaml")


def test_brackets_inside_a_quoted_multiline_title_are_text(tmp_path):
    title = "a " + "[" * 70 + " b"
    (tmp_path / "spec.yaml").write_text(SPEC.replace("name: tiny", f'name: tiny\ntitle: "{title}\n  c"'))
    result = run(tmp_path, "table", "--model", "spec.yaml", "-f", "json")
    assert result.exit_code == 0, result.stderr
    from mnsize.models import load_spec

    assert load_spec(str(tmp_path / "spec.yaml")).title == title + " c"


# --------------------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize("name,text,line,first", [
    ("budgets.yaml", BUDGET + "    max_madds: 10G\n", 6, 5),
    ("budgets.yaml", BUDGET + "budgets:\n  - {name: b, model: mobilenet_v1, max_params: 1G}\n", 6, 1),
    ("budgets.yaml", "budgets:\n  - {name: a, model: mobilenet_v1, max_params: 1G, alpha: 0.5, alpha: 1.0}\n", 2, 2),
    ("spec.yaml", SPEC + "classes: 20\n", 10, 5),
    ("spec.yaml", SPEC.replace("out: 8,", "out: 8, out: 16,"), 7, 7),
    ("spec.yaml", SPEC.replace("{channels: 3,", "{channels: 3, channels: 1,"), 3, 3),
    ("spec.yaml", SPEC.replace("width: floor", "width:\n  rule: floor\n  min: 8\n  min: 4"), 7, 6),
])
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, name, text, line, first):
    (tmp_path / name).write_text(text)
    args = ["check", name] if name == "budgets.yaml" else ["table", "--model", name]
    refused(run(tmp_path, *args), f"{name}:{line}: duplicate key", f"(first at line {first})")


def test_a_key_given_twice_in_a_profile_is_refused(tmp_path):
    text = yaml.safe_dump(PROFILE).replace("  offset_ms: 0.5\n", "  offset_ms: 0.5\n  offset_ms: 0.1\n")
    (tmp_path / "p.yaml").write_text(text)
    refused(run(tmp_path, "latency", "--profile", "p.yaml"), "duplicate key 'offset_ms'")


def test_duplicates_at_any_depth_but_not_through_merge_keys():
    from mnsize.errors import FileError
    from mnsize.yamlio import load_yaml

    with pytest.raises(FileError, match=r"f.yaml:4: duplicate key 'c' \(first at line 3\)"):
        load_yaml("a:\n  - b:\n      c: 1\n      c: 2\n", "f.yaml")
    data, _ = load_yaml("base: &b {q: 1, r: 2}\nmore: {<<: *b, q: 3}\nagain: *b\n", "f.yaml")
    assert data["more"] == {"q": 3, "r": 2} and data["again"] == {"q": 1, "r": 2}


# --------------------------------------------------------------------------- YAML 1.1 forms


@pytest.mark.parametrize("value", ["1:30", "0x10", "017", "1_000", "0b11"])
def test_yaml_11_numbers_are_not_numbers(tmp_path, value):
    (tmp_path / "budgets.yaml").write_text(BUDGET.replace("150M", value))
    refused(run(tmp_path, "check", "budgets.yaml"), "budgets.yaml:5:", "key 'max_madds'", "expected a count")


@pytest.mark.parametrize("key,value,message", [
    ("classes", "0x10", "expected an integer"),
    ("classes", "1_0", "expected an integer"),
    ("classes", "012", "expected an integer"),
    ("classes", "1:30", "expected an integer"),
])
def test_yaml_11_numbers_in_a_spec(tmp_path, key, value, message):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("classes: 10", f"{key}: {value}"))
    refused(run(tmp_path, "table", "--model", "spec.yaml"), "spec.yaml:5:", f"key '{key}'", message)


@pytest.mark.parametrize("value", ["yes", "no", "on", "off"])
def test_only_true_and_false_are_booleans(tmp_path, value):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("stride: 2}", f"stride: 2, bn: {value}}}"))
    refused(run(tmp_path, "table", "--model", "spec.yaml"), "key 'bn'", "expected true or false")


def test_explicit_tags_are_held_to_decimal_too():
    from mnsize.errors import FileError
    from mnsize.yamlio import load_yaml

    for text in ("a: !!int 0x10\n", "a: !!int 1:30\n", "a: !!float 1_0.5\n", "a: !!bool yes\n"):
        with pytest.raises(FileError, match=r"f.yaml:1: .*expected"):
            load_yaml(text, "f.yaml")
    assert load_yaml("a: !!int 17\nb: !!float 2\nc: TRUE\nd: 1e3\ne: '1:30'\n", "f.yaml")[0] == {
        "a": 17, "b": 2.0, "c": True, "d": 1000.0, "e": "1:30"}


@pytest.mark.parametrize("args", [
    ["table", "--alpha", "1_0"],
    ["table", "--alpha", "1/2"],
    ["fit", "--max-madds", "100M", "--alphas", "0.5,1_0"],
    ["check", "--model", "mobilenet_v1", "--max-madds", "1G", "--warn-at", "9_0%"],
    ["check", "--model", "mobilenet_v1", "--max-madds", "017M"],
])
def test_options_take_plain_decimal_only(tmp_path, args):
    result = run(tmp_path, *args)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr


def test_parse_decimal():
    from mnsize.units import UnitError, parse_decimal

    for text in ("0.35", " 1 ", "-2", "+5", "1e-3", ".5", "1.", "0", "12.50E+2"):
        assert parse_decimal(text, "x") == Fraction(text)
    for text in ("1_0", "7/20", "0x10", "017", "1:30", "nan", "inf", "", "1e31", "1e-100000000", "٣", "²",
                 "1" * 101, "0.5.5", "e3"):
        with pytest.raises(UnitError, match="^x: "):
            parse_decimal(text, "x")


def test_unit_parsers_refuse_other_digits_and_forms():
    from mnsize.units import UnitError, parse_percent, parse_quantity, parse_resolutions

    for bad in ("017", "١٥٠M", "1" * 5000):
        with pytest.raises(UnitError):
            parse_quantity(bad, "count")
    for bad in ("9_0%", "0x10%", "1/2"):
        with pytest.raises(UnitError):
            parse_percent(bad)
    for bad in ("²", "2_24", "9" * 5000, "0224"):
        with pytest.raises(UnitError):
            parse_resolutions(bad)


# --------------------------------------------------------------------------- long and non-finite numbers


@pytest.mark.parametrize("name,text,fragment", [
    ("spec.yaml", SPEC.replace("classes: 10", "classes: " + "9" * 5000), "spec.yaml:5: "),
    ("budgets.yaml", BUDGET.replace("150M", "9" * 5000), "budgets.yaml:5: "),
    ("p.yaml", yaml.safe_dump(PROFILE).replace("offset_ms: 0.5", "offset_ms: " + "9" * 5000), "p.yaml:"),
])
def test_integers_too_long_to_convert_are_refused(tmp_path, name, text, fragment):
    (tmp_path / name).write_text(text)
    args = {"spec.yaml": ["table", "--model", name], "budgets.yaml": ["check", name],
            "p.yaml": ["latency", "--profile", name]}[name]
    refused(run(tmp_path, *args), fragment, "5,000 digits")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_expansion_is_refused(tmp_path, value):
    (tmp_path / "spec.yaml").write_text(HEADER + f"layers:\n  - {{kind: pw, t: {value}}}\n")
    refused(run(tmp_path, "table", "--model", "spec.yaml"), "spec.yaml:7:", "key 't'", "expected a positive number")


# --------------------------------------------------------------------------- files that are not regular files


@posix_only
@pytest.mark.parametrize("case", ["spec", "budgets", "budget model", "baseline", "profile"])
def test_a_fifo_is_refused_at_once(tmp_path, case):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "budgets.yaml").write_text(BUDGET)
    args = {"spec": ["table", "--model", "fifo.yaml"],
            "budgets": ["check", "fifo"],
            "budget model": ["check", "model.yaml"],
            "baseline": ["check", "budgets.yaml", "--baseline", "fifo", "--max-growth", "5%"],
            "profile": ["latency", "--profile", "fifo"]}[case]
    os.symlink("fifo", tmp_path / "fifo.yaml")
    (tmp_path / "model.yaml").write_text(BUDGET.replace("mobilenet_v1", "fifo.yaml"))
    proc = process(tmp_path, *args, timeout=20)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "is a FIFO, not a regular file" in line


@posix_only
@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "directory", "socket"])
def test_devices_folders_and_sockets_are_refused(tmp_path, kind):
    from mnsize.errors import MnsizeError

    baseline = importlib.import_module("mnsize.baseline")
    yamlio = importlib.import_module("mnsize.yamlio")
    noun = {"/dev/zero": "a device", "/dev/urandom": "a device", "directory": "a directory", "socket": "a socket"}[kind]
    path = {"directory": str(tmp_path), "socket": str(tmp_path / "sock")}.get(kind, kind)
    with socket.socket(socket.AF_UNIX) as server:
        if kind == "socket":
            server.bind(path)
        for read in (lambda: yamlio.read_text(path, path), lambda: baseline.read_baseline(path)):
            with pytest.raises(MnsizeError, match=f"is {noun}, not a regular file"):
                read()


# --------------------------------------------------------------------------- baselines


def test_a_baseline_counts_by_the_convention_it_was_written_with(tmp_path):
    (tmp_path / "budgets.yaml").write_text(BUDGET.replace("150M", "1G"))
    wrote = run(tmp_path, "check", "budgets.yaml", "--convention", "ptflops", "--write-baseline", "base.json")
    assert wrote.exit_code == 0, wrote.stderr
    data = json.loads((tmp_path / "base.json").read_text())
    assert data["format"] == "mnsize-baseline/2" and data["convention"] == "ptflops"
    assert data["budgets"]["phone"]["madds"] > 149_497_088  # the paper's count: ptflops adds BatchNorm and ReLU
    same = run(tmp_path, "check", "budgets.yaml", "--convention", "ptflops", "--baseline", "base.json",
               "--max-growth", "0%")
    assert same.exit_code == 0, same.stderr + same.stdout


def test_a_baseline_of_another_convention_is_refused(tmp_path):
    (tmp_path / "budgets.yaml").write_text(BUDGET.replace("150M", "1G"))
    run(tmp_path, "check", "budgets.yaml", "--convention", "ptflops", "--write-baseline", "base.json")
    refused(run(tmp_path, "check", "budgets.yaml", "--baseline", "base.json", "--max-growth", "5%"),
            "base.json", "ptflops", "paper")
    (tmp_path / "old.json").write_text(json.dumps({"format": "mnsize-baseline/1",
                                                   "budgets": {"phone": {"madds": 149_497_088}}}))
    assert run(tmp_path, "check", "budgets.yaml", "--baseline", "old.json", "--max-growth", "0%").exit_code == 0
    refused(run(tmp_path, "check", "budgets.yaml", "--convention", "thop", "--baseline", "old.json",
                "--max-growth", "5%"), "old.json", "paper", "thop")


def _baseline(values: str, extra: str = "") -> str:
    """A baseline of the first format (still read), whose every other key is sound."""
    return '{"format": "mnsize-baseline/1"%s, "budgets": {"phone": %s}}' % (extra, values)


@pytest.mark.parametrize("content,fragment", [
    (_baseline("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (_baseline('{"madds": 1, "dtype": ' + "[" * 65 + "]" * 65 + "}"), "dtype"),
    (_baseline('{"madds": %s}' % ("9" * 5000)), "5,000 digits"),
    (_baseline('{"madds": %s}' % ("9" * 31)), "31 digits"),
    (_baseline('{"madds": 1}', ', "note": NaN'), "NaN is not a JSON number"),
    (_baseline('{"madds": 1, "dtype": Infinity}'), "Infinity is not a JSON number"),
    (_baseline('{"madds": -Infinity}'), "Infinity is not a JSON number"),
    (_baseline('{"madds": 1, "madds": 2}'), "duplicate key 'madds'"),
    (_baseline('{"madds": 1, "dtype": "fp64"}'), "dtype"),
    (_baseline('{"madds": 1}', ', "extra": [[[[1]]]]'), "unknown key 'extra'"),
    ('{"format": "mnsize-baseline/2", "budgets": {"phone": {"madds": 1}}}', '"convention": expected one of'),
])
def test_hostile_baselines_are_refused(tmp_path, content, fragment):
    (tmp_path / "budgets.yaml").write_text(BUDGET)
    (tmp_path / "base.json").write_text(content)
    refused(run(tmp_path, "check", "budgets.yaml", "--baseline", "base.json", "--max-growth", "5%"),
            "base.json", fragment)


def test_a_huge_baseline_is_refused_unread(tmp_path):
    with open(tmp_path / "base.json", "wb") as file:
        file.truncate(16 * 2**20 + 1)  # sparse: costs no disk
    baseline = importlib.import_module("mnsize.baseline")
    from mnsize.errors import MnsizeError

    with pytest.raises(MnsizeError, match="larger than 16,777,216 bytes"):
        baseline.read_baseline(str(tmp_path / "base.json"))


# --------------------------------------------------------------------------- profiles


def _profile(tmp_path, change) -> str:
    data = json.loads(json.dumps(PROFILE))
    change(data)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    return "p.yaml"


@pytest.mark.parametrize("change,fragment", [
    (lambda d: d["model"].update(offset_ms=-999), "model.offset_ms must be a number from 0 to 1000, got -999"),
    (lambda d: d["model"].update(offset_ms=-0.001), "model.offset_ms"),
    (lambda d: d["model"].update(offset_ms=0, ms_per=dict.fromkeys(PROFILE["model"]["ms_per"], 0)),
     "predict 0 ms"),
    (lambda d: d["model"]["ms_per"].update(extra=1.0), "unknown feature"),
    (lambda d: d["device"].update(threads=100_000), "device.threads must be a whole number from 1 to 256"),
    (lambda d: d["device"].update(threads="abc"), "device.threads"),
    (lambda d: d["device"].update(threads=-1), "device.threads"),
    (lambda d: d["device"].update(threads=[1]), "device.threads"),
    (lambda d: d["device"].update(threads=True), "device.threads"),
    (lambda d: d["device"].update(cpu=["x"]), "device.cpu must be a string"),
    (lambda d: d["device"].update(date=20261121), "device.date must be a string"),
    (lambda d: d.update(device=5), "device must be a mapping"),
    (lambda d: d.update(error={"networks": -1}), "error.networks"),
    (lambda d: d.update(error={"held_out_median_error_pct": "low"}), "error.held_out_median_error_pct"),
])
def test_a_tampered_profile_is_refused(tmp_path, change, fragment):
    name = _profile(tmp_path, change)
    refused(run(tmp_path, "latency", "--profile", name), f"{name}: not a usable latency profile: ", fragment)


def test_a_negative_offset_cannot_pass_a_latency_budget(tmp_path):
    name = _profile(tmp_path, lambda d: d["model"].update(offset_ms=-999))
    refused(run(tmp_path, "check", "--model", "mobilenet_v1", "--max-latency", "1us", "--profile", name),
            "model.offset_ms")


def test_a_profile_that_is_not_there_is_named_with_its_budget(tmp_path):
    (tmp_path / "budgets.yaml").write_text(BUDGET + "    max_latency: 10ms\n    profile: missing.yaml\n")
    refused(run(tmp_path, "check", "budgets.yaml"),
            "budgets.yaml:7: budget 1 (phone): key 'profile': no such file: missing.yaml")
    from mnsize.budgets import load_budgets
    from mnsize.errors import BudgetError

    with pytest.raises(BudgetError) as info:
        load_budgets(str(tmp_path / "budgets.yaml"))
    assert (info.value.line, info.value.key, info.value.entry) == (7, "profile", 1)
