from fractions import Fraction

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from mnsize.cli.options import limit_options
from mnsize.units import UnitError, format_bytes, format_count, parse_quantity


@pytest.mark.parametrize("text,expected", [
    ("150M", 150_000_000), ("1.5G", 1_500_000_000), ("300k", 300_000), ("300K", 300_000),
    ("4.2M", 4_200_000), ("150000000", 150_000_000), ("150m", 150_000_000), (" 2 M ", 2_000_000),
    ("1e6", 1_000_000), ("0.001G", 1_000_000), (".5k", 500), (42, 42),
])
def test_counts(text, expected):
    assert parse_quantity(text, "count") == expected


@pytest.mark.parametrize("text,expected", [
    ("2MB", 2_000_000), ("512KiB", 524_288), ("1.5MiB", 1_572_864), ("300B", 300), ("300", 300),
    ("2mb", 2_000_000), ("1GiB", 2**30), ("3kB", 3000),
])
def test_sizes(text, expected):
    assert parse_quantity(text, "bytes") == expected


@pytest.mark.parametrize("text,expected", [
    ("10ms", Fraction(10)), ("1.5s", Fraction(1500)), ("250us", Fraction(1, 4)), ("250µs", Fraction(1, 4)),
    ("2000ns", Fraction(1, 500)),
])
def test_durations(text, expected):
    assert parse_quantity(text, "time") == expected


@pytest.mark.parametrize("text,kind,message", [
    ("150X", "count", "unknown unit 'X'"),
    ("-5M", "count", "expected a count"),
    ("", "count", "expected a count"),
    ("1.5", "count", "not a whole number"),
    ("1.5B", "bytes", "not a whole number of bytes"),
    ("2MBs", "bytes", "unknown unit 'MBs'"),
    ("10", "time", "unknown unit ''"),
    ("10MS", "time", "unknown unit 'MS'"),
    ("1e99999", "count", "exponent out of range"),
    (True, "count", "expected a count"),
    (None, "bytes", "expected a size"),
])
def test_bad_quantities(text, kind, message):
    with pytest.raises(UnitError, match=message):
        parse_quantity(text, kind)


@given(st.integers(min_value=0, max_value=10**15))
def test_plain_integers_round_trip(n):
    assert parse_quantity(str(n), "count") == n
    assert parse_quantity(f"{n}B", "bytes") == n


def test_formatting():
    assert format_count(568_740_352) == "568.7M"
    assert format_count(4_210_088, 2) == "4.21M"
    assert format_count(1_137_480_704) == "1.1G"
    assert format_count(999) == "999"
    assert format_bytes(1_320_648) == "1.3MiB"
    assert format_bytes(100) == "100B"


def test_param_types_fail_with_the_option_name():
    @click.command()
    @limit_options("madds", "size", "latency")
    def cmd(max_madds, max_size, max_latency):
        click.echo(f"{max_madds} {max_size} {max_latency}")

    runner = CliRunner()
    ok = runner.invoke(cmd, ["--max-madds", "150M", "--max-size", "2MB", "--max-latency", "10ms"])
    assert ok.output.strip() == "150000000 2000000 10000"  # latency in microseconds
    bad = runner.invoke(cmd, ["--max-madds", "150X"])
    assert bad.exit_code == 2
    assert "Invalid value for '--max-madds': unknown unit 'X' in '150X'" in bad.output
