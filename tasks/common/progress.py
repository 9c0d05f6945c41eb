"""Progress bars for long loops (tqdm), shown on the main process only."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(total: int, initial: int = 0, desc: str = "", enabled: bool = True):
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr, smoothing=0.1)


def fmt_postfix(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, float):
            out[key] = f"{value:.3g}"
        elif value is not None:
            out[key] = value
    return out
