"""User text made safe for where it is shown.

A spec's name, a budget's name or a profile's device string is the user's:
it may hold an escape sequence (which would set the terminal's title or clear
its screen), a newline (which would split a one-line error message or a
Markdown row) or characters that XML 1.0 does not allow. Each function here
makes a string safe for one destination and leaves ordinary text unchanged.

The same goes for mnsize's own characters (``×``, ``α``, ``·``) on an output
whose encoding cannot show them: ``ascii_forms`` is the codec error handler
that writes them as ASCII instead of failing.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and
# lone surrogates (what Python makes of a file name that is not UTF-8)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# what XML 1.0 allows: tab, newline, carriage return, and these ranges
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MARKDOWN_SPECIAL = re.compile(r"([\\|`*_\[\]<>])")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``,
    ``\\n``'s ``\\x0a``): safe on a terminal and within one line."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def markdown_cell(text: str) -> str:
    """``text`` for one cell of a Markdown table: one line, with the
    characters that would end the cell or start markup escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text))


def xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 does not allow shown as escapes
    (ElementTree escapes ``<``, ``&`` and quotes itself)."""
    return _NOT_XML.sub(lambda m: _escape(m.group()), text)


#: ASCII for the characters mnsize prints, where an output encoding (a Windows
#: console's cp1252, the POSIX locale's ascii) cannot show them
ASCII_FORMS = {
    "×": "x", "α": "alpha", "ρ": "rho", "µ": "u", "·": "-", "≠": "!=", "≤": "<=", "≥": ">=", "²": "^2",
    "–": "-", "—": "-", "…": "...", "→": "->", "←": "<-", "±": "+/-", "≈": "~", "‘": "'", "’": "'",
    "“": '"', "”": '"', "◆": "*", "✅": "ok", "❌": "x", "⚠": "!", "\ufe0f": "", "\u00a0": " ",
}
ASCII_ERRORS = "mnsize-ascii"


def _ascii_form(char: str) -> str:
    form = ASCII_FORMS.get(char)
    if form is not None:
        return form
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):
        return "|" if "VERTICAL" in name and "HORIZONTAL" not in name else \
            "-" if "HORIZONTAL" in name and "VERTICAL" not in name else "+"
    if name.endswith("BLOCK") or name.endswith("SHADE"):
        return "#"
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def ascii_forms(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler (registered as ``"mnsize-ascii"``): the characters
    an encoding cannot show, written as ASCII (``×`` as ``x``, ``α`` as
    ``alpha``, box drawing as ``-``, ``|`` and ``+``, anything else as ``?``)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(_ascii_form(char) for char in bad), error.end


codecs.register_error(ASCII_ERRORS, ascii_forms)


def shows_unicode(encoding: str | None) -> bool:
    """Whether an output in ``encoding`` can show the characters mnsize prints."""
    try:
        "".join(ASCII_FORMS).encode(encoding or "utf-8")
    except (UnicodeError, LookupError):
        return False
    return True


def utf8_safe(text: str) -> str:
    """``text`` as UTF-8 can hold it: a file name that is not valid UTF-8
    (Python keeps its bytes as lone surrogates, which UTF-8 encoders and
    strict JSON parsers refuse) shows its bytes as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
