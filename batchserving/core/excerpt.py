"""A value from outside the process, shown in a message: a repr of at most 80 characters.

A bad value is named in its error so a person can find it, but never whole: a value read
from a file or a server may be megabytes long (a YAML alias bomb expands to hundreds of
millions of characters) or carry more than the person needs to see.
"""

from __future__ import annotations

import reprlib

LIMIT = 80
# Integers of more digits than this are not converted to text at all (Python refuses
# above 4300 digits, and the conversion is quadratic below that).
MAX_INT_BITS = 256


class _ShortRepr(reprlib.Repr):
    """reprlib's bounded repr, with integers too large to print described instead."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > MAX_INT_BITS:
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = LIMIT
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def excerpt(value: object, limit: int = LIMIT) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, without building the whole repr."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = LIMIT) -> str:
    """``text`` itself (no quotes), cut to at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
