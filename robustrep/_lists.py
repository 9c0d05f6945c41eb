"""Lists written as text (``"a,b,c"``): the checks the library and the programs share.

Torch-free, so that the command line can check a list before torch is imported.
"""

from __future__ import annotations

import re
from typing import Any


def check_no_empty_item(name: str | None, text: Any, accepted: str,
                        separators: str = ",") -> None:
    """Refuse an empty item in a list written with ``separators`` (``a,,b``, ``a,b,``, ``""``
    beside other strings of a list), as stylegan2-ada's ``--seeds`` parser refuses one: dropped,
    it would hide an item the user meant to give. Spaces beside a separator are no item; a lone
    empty text is no list (its caller says what it means).

    Raises:
        ValueError: ``<name> must be <accepted>; got <text> (an empty item)`` (no name: the
            message starts at "must").
    """
    items = list(text) if isinstance(text, (list, tuple)) else [text]
    parts = [p for item in items for p in re.split(f"[{re.escape(separators)}]", str(item))]
    if len(parts) > 1 and not all(p.strip() for p in parts):
        raise ValueError(f"{name + ' ' if name else ''}must be {accepted}; got {text!r} "
                         f"(an empty item)")
