"""What every view shares: the Grid a table is drawn from, and the writers
that turn one into a rich table on a terminal, CSV or Markdown; strict JSON;
the one-line description of a configuration.

Cells, titles and notes are text, never rich markup: the user's text in them
(a model's name, a file path) is shown escaped (mnsize.text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from ..expand import Config
from ..text import ASCII_ERRORS, markdown_cell, printable, shows_unicode, utf8_safe


@dataclass
class Grid:
    """A table in display form, plus its raw form for the views that write CSV."""

    title: str
    headers: list[str]
    right: set[int]  # columns aligned right (numbers)
    rows: list[list[str]]
    csv_headers: list[str] = field(default_factory=list)
    csv_rows: list[list[object]] = field(default_factory=list)
    totals: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    # columns (indexes into headers) that a terminal too narrow for the whole
    # table goes without, in the order they are left out
    optional: list[int] = field(default_factory=list)


def dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def share(part: int, whole: int, digits: int = 4) -> float | None:
    """100 x part / whole for JSON, rounded; None (null) where whole is 0."""
    return round(100 * part / whole, digits) if whole else None


def ratio(part: int, whole: int) -> float | None:
    """part / whole for JSON; None (null) where whole is 0."""
    return part / whole if whole else None


def format_alpha(alpha) -> str:
    text = f"{float(alpha):g}"
    return text if "." in text or "e" in text else f"{text}.0"


def describe(config: Config) -> str:
    """The configuration in one line; the model's name, the user's text, escaped."""
    h, w = config.resolution
    text = f"{printable(config.model)} · α {format_alpha(config.alpha)} · {h}×{w} · {config.classes} classes"
    return text if config.convention == "paper" else f"{text} · counted as {config.convention} counts"


def head(config: Config) -> dict:
    return {"model": config.model, "alpha": float(config.alpha), "resolution": list(config.resolution)}



def dump_json(data: dict, out: IO[str]) -> None:
    """``data`` as strict JSON (RFC 8259: a NaN or an infinity is a bug, and
    raises rather than printing what no parser accepts)."""
    import json

    json.dump(_unicode(data), out, indent=2, allow_nan=False)
    out.write("\n")


def _unicode(value):
    """``value`` with every string made valid Unicode (text.utf8_safe)."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unicode(v) for v in value]
    return value


def write_grid(grid: Grid, fmt: str, out: IO[str], row_style=None) -> None:
    """Write ``grid`` as csv, markdown or a rich table; ``row_style(row)`` gives
    a rich style for a row of the table (None for none).

    Cells, titles and notes are text, never rich markup, and the user's text in
    them is shown escaped (mnsize.text). On a terminal too narrow for the whole
    table, the columns in ``grid.optional`` are left out, in that order."""
    if fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(grid.csv_headers)
        writer.writerows(grid.csv_rows)
    elif fmt == "markdown":
        cell = lambda text: markdown_cell(str(text))  # noqa: E731
        out.write(f"**{cell(grid.title)}**\n\n")
        out.write("| " + " | ".join(cell(h) for h in grid.headers) + " |\n")
        out.write("|" + "|".join("---:" if i in grid.right else "---" for i in range(len(grid.headers))) + "|\n")
        for row in grid.rows + ([grid.totals] if grid.totals else []):
            out.write("| " + " | ".join(cell(c) for c in row) + " |\n")
        for note in grid.notes:
            out.write(f"\n{cell(note)}\n")
    else:
        _rich_table(grid, out, row_style)


#: the width of a table that is not shown on a terminal: wide enough that
#: piped or redirected tables keep their rows whole
PIPED_WIDTH = 200


def make_console(out: IO[str], width: int | None = None):
    """A rich Console on ``out``: as wide as the terminal, or PIPED_WIDTH when
    ``out`` is not one; a closed pipe raises BrokenPipeError for the CLI to
    handle (rich would exit 1, the status of a failed check)."""
    # rich is imported here only: json and csv output never pay for it
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    if width is None and not out.isatty():
        width = PIPED_WIDTH
    # a height with the width, or rich takes a dumb terminal's 80 columns instead
    return _Console(file=out, highlight=False, width=width, height=None if width is None else 25, emoji=False,
                    markup=False)


def as_text(text, console):
    """``text`` for ``console``: a plain string becomes rich Text (never markup)
    with its control characters escaped; rich Text keeps its styles. Where the
    console's encoding cannot show mnsize's non-ASCII characters, they are in
    ASCII already here, so that a table is laid out with the widths it is
    printed with."""
    from rich.text import Text

    if not isinstance(text, Text):
        return Text(for_console(printable(str(text)), console))
    if shows_unicode(console.encoding):
        return text
    text = text.copy()
    text.plain = for_console(text.plain, console)
    return text


def for_console(text: str, console) -> str:
    """``text`` in characters that ``console``'s encoding can show."""
    encoding = console.encoding
    if shows_unicode(encoding):
        return text
    return text.encode(encoding, ASCII_ERRORS).decode(encoding)


def _cell_width(text) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(text).splitlines()), default=0)


def _word_width(text) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in str(text).split()), default=0)


def _table_width(columns: list[list], wraps: list[bool]) -> int:
    """The width of a rich table with the default box and padding: each column
    its widest cell (its widest word where it may wrap), 3 characters of
    border and padding per column and 1 more."""
    return sum((max(map(_word_width, cells)) if wrap else max(map(_cell_width, cells))) + 3
               for cells, wrap in zip(columns, wraps)) + 1


def _rich_table(grid: Grid, out: IO[str], row_style=None) -> None:
    from rich.table import Table

    console = make_console(out)
    headers = [for_console(h, console) for h in grid.headers]
    texts = [[as_text(c, console) for c in row] for row in grid.rows]
    footer = [as_text(c, console) for c in grid.totals] if grid.totals else None
    columns = [[h, *(row[i] for row in texts), *([footer[i]] if footer else [])] for i, h in enumerate(headers)]
    # a column may wrap at its spaces, never inside a word: a number or a shape
    # is shown whole or not at all
    wraps = [any(" " in str(c).strip() for c in column) for column in columns]
    whole = [False] * len(headers)
    keep = list(range(len(headers)))
    natural = lambda: _table_width([columns[i] for i in keep], whole)  # noqa: E731
    for index in grid.optional:
        if natural() <= console.width:
            break
        keep.remove(index)
    if natural() > console.width and _table_width([columns[i] for i in keep], [wraps[i] for i in keep]) > console.width:
        # not even with its text wrapped: as wide as it is (the terminal folds the
        # lines) rather than a number cut short
        console = make_console(out, width=natural())

    table = Table(title=as_text(grid.title, console), title_justify="left", show_footer=footer is not None,
                  header_style="bold", footer_style="bold")
    for i in keep:
        table.add_column(headers[i], justify="right" if i in grid.right else "left",
                         footer=footer[i] if footer else "", no_wrap=not wraps[i], overflow="fold")
    for raw, row in zip(grid.rows, texts):
        table.add_row(*(row[i] for i in keep), style=row_style(raw) if row_style else None)
    console.print(table)
    for note in grid.notes:  # a terminal's notes wrap at words, a file's stay one line each
        console.print(as_text(note, console), soft_wrap=not console.is_terminal)
