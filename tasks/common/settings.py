"""The settings of the programs that compare regularizers run by run: ``ood bench --regs`` and
``report --gan-regs``/``--classify-regs``.

A setting is a program's ``--reg`` value (methods joined by ``+``), then options of that
program for this setting alone, each after an ``@`` as NAME=VALUE:
``mixup+cutmix@mixup_alpha=0.8`` trains Mixup and CutMix with Mixup's alpha 0.8 and CutMix's
default (timm's ``--mixup 0.8 --cutmix 1.0``); ``none@head=uos`` the baseline with the UoS head.
The comparing program sets some options itself for each run (its seed, its folder); those are
refused in a setting. A setting's options are checked by the program's own ``--dry-run`` in a
process of its own (:func:`dry_run_config`), as the programs never import each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from robustrep.tasks.common.config import ConfigError, parse_literal
from robustrep.tasks.common.errors import ChildFailed

EXAMPLES = {"classify": "none@head=uos, mixup+cutmix@mixup_alpha=0.8",
            "gan": "adaptivemix@am_weight=2, mixup+cutmix@mixup_alpha=0.8"}


def split_setting(setting: str, flag: str = "--regs", program: str = "classify",
                  own: Mapping[str, str] | None = None,
                  owner: str = "bench") -> tuple[str, dict[str, Any]]:
    """``"adaptivemix@head=uos"`` -> ``("adaptivemix", {"head": "uos"})``; a malformed one is
    refused naming ``flag`` and the form of a ``program`` setting, an option in ``own`` (name:
    where ``owner`` sets it) as ``owner``'s."""
    reg, *opts = str(setting).split("@")
    if not reg.strip():  # was refused by the run's own dry run, as "--reg" the user never gave
        raise ConfigError(f"{flag} {setting!r}: a setting starts with its methods, or none "
                          f"(e.g. {EXAMPLES[program]})")
    form = (f"{flag} {setting!r}: a setting is a {program} --reg value (methods joined by '+'), "
            f"each of its own {program} options after an '@' as NAME=VALUE (e.g. "
            f"{EXAMPLES[program]}); got ")
    return reg, parse_opts(opts, f"{flag} {setting!r}:", own or {}, owner,
                           lambda item: form + repr("@" + item))


def parse_opts(items: list[str], where: str, own: Mapping[str, str], owner: str,
               bad) -> dict[str, Any]:
    """``NAME=VALUE`` items as a dict of values (``parse_literal``); ``bad(item)`` is the line
    for an item of another form, and an option named in ``own`` is ``owner``'s to set."""
    out = {}
    for item in items or ():
        key, eq, raw = str(item).partition("=")
        if not eq or not key:
            raise ConfigError(bad(str(item)))
        key = key.strip().replace("-", "_")
        if key in out:  # the last had won, unsaid
            raise ConfigError(f"{where} {item}: {key} is given twice; give it once")
        if key in own:
            raise ConfigError(f"{where} {item}: {key} is the {owner}'s to set for each run "
                              f"({own[key]}); drop it")
        out[key] = parse_literal(raw)
    return out


def dry_run_config(program: str, options: dict[str, Any], what: str) -> dict[str, Any]:
    """The config ``robustrep PROGRAM train OPTIONS --dry-run`` resolves (its own parser and
    checks, in its own process, which writes nothing); its refusal is one line naming
    ``what``; a crash of the check is :class:`ChildFailed`."""
    from robustrep.tasks.common import launch
    argv = [program, "train", *launch.option_args(options), "--dry-run"]
    code, output, errors = launch.check_robustrep(argv)
    lines = [ln for ln in (errors or output).splitlines() if ln.strip()]
    if code != 0:
        reason = (lines[-1] if lines else f"exit code {code}").split("error: ", 1)[-1]
        reason = reason.split(" (see 'robustrep", 1)[0]  # the top-level help: ours instead
        if code != 2:  # a crash of the check, not a refusal: no mistake of the user's
            raise ChildFailed(f"{what}: robustrep {program} train --dry-run failed (exit "
                              f"{code}): {reason}")
        raise ConfigError(f"{what}: robustrep {program} train does not accept it: {reason}; "
                          f"see robustrep {program} train --help for the accepted options")
    return json.loads(output)


def folder_name(setting: str) -> str:
    """A setting as one folder's name: ``mixup+cutmix_mixup_alpha-0.8``, '@' and '=' replaced,
    and any character but letters, digits and ``._,+-`` made ``_`` (a '/' in a value had made
    folders, and ``..`` put a run outside ``--out``)."""
    return re.sub(r"[^\w.,+-]", "_", setting.replace("@", "_").replace("=", "-"))
