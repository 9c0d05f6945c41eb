"""Where a classifier's architecture and pretrained weights come from, as timm users name them.

Four sources, resolved to ``(timm architecture, pretrained config, weights file)`` before any model
is built, so a missing file is one line that names it:

- a timm name (``resnet10t``, ``resnet10t.c3_in1k``) with ``pretrained``: the default (or named)
  pretrained tag's Hugging Face repository (``pretrained_cfg.hf_hub_id``, e.g.
  ``timm/resnet10t.c3_in1k``), fetched through ``huggingface_hub`` into its standard cache, as
  ``timm.create_model(name, pretrained=True)`` does (huggingface/pytorch-image-models,
  ``timm/models/_builder.py`` ``_resolve_pretrained_source``, ``_hub.py``);
- ``hf-hub:ORG/NAME[@REV]``: that repository's ``config.json`` (timm's export format:
  ``architecture``, ``num_classes``, ``pretrained_cfg``, ``model_args``) and weights;
- a local timm folder, ``local-dir:PATH`` or just ``PATH`` (``config.json`` + ``model.safetensors``
  or ``pytorch_model.bin``), as ``timm.models.push_to_hf_hub``/``save_for_hf`` writes it.

The cache is ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``, read at
call time. With ``HF_HUB_OFFLINE=1`` or ``ROBUSTREP_OFFLINE=1`` only the cache is read: nothing
connects, and a file absent from it is a :class:`CheckpointError` naming the model, the file and
the cache folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustrep.tasks.common.download import offline_reason
from robustrep.tasks.common.errors import CheckpointError
from robustrep.tasks.common.runfiles import saved_option

HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's order on the hub
LOCAL_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")
HUB_PREFIX, LOCAL_PREFIX = "hf-hub:", "local-dir:"


@dataclass
class ModelSource:
    """What :func:`resolve_model` found: build ``arch`` with ``model_args``, take mean/std and the
    classifier's name from ``cfg`` (timm pretrained_cfg fields), load ``weights`` if not None."""

    name: str
    arch: str
    cfg: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, resolved as ``huggingface_hub`` resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def hub_cache_entry(path: str | os.PathLike) -> Path | None:
    """The cache folder of the hub repository holding ``path`` (``CACHE/models--ORG--NAME``),
    or None for a file outside the hub cache. Deleting it has the file fetched again: deleting
    the snapshot's file alone does not, huggingface_hub links it again to the damaged blob."""
    cache = hub_cache_dir().absolute()
    where = Path(path).expanduser().absolute()
    if cache not in where.parents:
        return None
    return cache / where.relative_to(cache).parts[0]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def hub_file(repo: str, filenames: tuple[str, ...], model: str) -> Path:
    """The first of ``filenames`` of hub repository ``repo`` (``ORG/NAME[@REV]``): from the cache,
    else downloaded into it (never when offline). CheckpointError names what is missing."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (EntryNotFoundError, HFValidationError,
                                        LocalEntryNotFoundError)

    repo_id, _, revision = repo.partition("@")
    cache = hub_cache_dir()
    for name in filenames:
        try:
            hit = try_to_load_from_cache(repo_id, name, cache_dir=cache,
                                         revision=revision or None)
        except HFValidationError:  # its line names no model (`hf-hub:`, `hf-hub:a/b/c`) and
            # advises a repo_type argument no command has
            raise CheckpointError(f"model {model!r}: {repo_id!r} is not a Hugging Face "
                                  f"repository id; give {HUB_PREFIX}ORG/NAME[@REVISION], each "
                                  f"name of letters, digits, '-', '_' and '.'") from None
        if isinstance(hit, str):
            return Path(hit)
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    reason = offline_reason()
    if reason:
        raise CheckpointError(
            f"model {model!r}: {' or '.join(filenames)} of hf-hub:{repo} is not in the Hugging "
            f"Face cache {cache} and downloads are off ({reason}); place it under "
            f"{folder}/snapshots/<revision>/ with refs/main naming <revision> (or unset "
            f"{reason.split('=')[0]} to download it)")
    _say_fetching(repo, filenames, cache)
    for name in filenames:
        try:
            with _hub_warnings_off():
                return Path(hf_hub_download(repo_id, name, revision=revision or None,
                                            cache_dir=cache))
        except LocalEntryNotFoundError as err:  # no file from the hub (a subclass of the next)
            raise CheckpointError(f"model {model!r}: {name} of hf-hub:{repo} is not in the cache "
                                  f"{cache}, and {_hub_failure(err.__cause__, folder)}") from None
        except EntryNotFoundError:  # the hub answered: this repository has no such file
            continue
        except Exception as err:  # network, auth, disk: all end the same way for the user
            raise CheckpointError(f"model {model!r}: could not download {name} of hf-hub:{repo} "
                                  f"into {cache}: {_one_line(err)}{_cache_advice(err)}") from None
    raise CheckpointError(f"model {model!r}: hf-hub:{repo} has none of {', '.join(filenames)}")


def _endpoint() -> str:
    from huggingface_hub import constants
    return constants.ENDPOINT


def _say_fetching(repo: str, filenames: tuple[str, ...], cache: Path) -> None:
    """One line before the hub is asked for a file the cache lacks: huggingface_hub's own retry
    lines are off (:func:`_hub_warnings_off`), and a hub that does not answer kept the command
    silent for minutes."""
    import sys
    print(f"note: fetching {' or '.join(filenames)} of hf-hub:{repo} from the Hugging Face hub "
          f"(HF_ENDPOINT {_endpoint()}) into {cache}", file=sys.stderr, flush=True)


def _hub_failure(cause: BaseException | None, folder: Path) -> str:
    """What came of asking the hub for a file, and what to do, from the error huggingface_hub
    keeps as the cause of its LocalEntryNotFoundError: an HTTP error, an answer that is no
    hub's (a ``FileMetadataError``: no ``X-Repo-Commit``), or no answer (refused, timed out)."""
    hub = f"the Hugging Face hub at {_endpoint()}"
    place = f"place the file under {folder}/snapshots/<revision>/ and set HF_HUB_OFFLINE=1"
    response = getattr(cause, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        phrase = getattr(response, "reason_phrase", None) or getattr(response, "reason", "")
        then = "try again later" if status >= 500 else "check HF_ENDPOINT and the name"
        return f"{hub} answered {status} {phrase}; {then}, or {place}"
    if type(cause).__name__ == "FileMetadataError":
        said = ("answered without the hub's X-Repo-Commit header: it is not a Hugging Face hub"
                if "X-Repo-Commit" in str(cause) else f"gave no usable answer: {_one_line(cause)}")
        return (f"{_endpoint()} {said}; check HF_ENDPOINT (unset: https://huggingface.co), or "
                f"{place}")
    why = f" ({type(cause).__name__}: {_one_line(cause)})" if cause is not None else ""
    return f"could not reach {hub}{why}; connect to the network, or {place}"


def _cache_advice(err: Exception) -> str:
    """Where a hub cache that cannot be written is moved (the user chose no folder for it)."""
    import errno
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS,
                                                  errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR):
        return "; set HF_HOME (or HF_HUB_CACHE) to a folder you can write to"
    return ""


@contextmanager
def _hub_warnings_off() -> Iterator[None]:
    """huggingface_hub's own warnings off (a line per retry on a bad network, ten before it
    gives up): what came of the download is said in one line."""
    hub = logging.getLogger("huggingface_hub")
    level = hub.level
    hub.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub.setLevel(level)


def read_timm_config(path: Path, model: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(architecture, pretrained_cfg, model_args)`` from a timm ``config.json``: the nested
    format of timm >= 0.9 (``pretrained_cfg`` key) or the legacy flat one."""
    import timm
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"model {model!r}: cannot read {path}: {_one_line(err)}") from None
    data = dict(data) if isinstance(data, dict) else {}
    cfg = dict(data.get("pretrained_cfg") or {}) if "pretrained_cfg" in data else dict(data)
    arch = data.get("architecture") or cfg.get("architecture")
    if not isinstance(arch, str) or not timm.is_model(arch):
        raise CheckpointError(f"model {model!r}: {path} names no timm architecture (expected a "
                              f"timm config.json with \"architecture\", e.g. \"resnet18\"; got "
                              f"{arch!r})")
    if "num_classes" in data:
        cfg["num_classes"] = data["num_classes"]
    return arch, cfg, dict(data.get("model_args") or {})


def _local_weights(folder: Path, model: str) -> Path:
    for name in LOCAL_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    for pattern in ("*.safetensors", "*.pth", "*.bin"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    raise CheckpointError(f"model {model!r}: the timm folder {folder} has no weights file "
                          f"(expected {' or '.join(LOCAL_WEIGHT_FILES[:2])} next to config.json)")


def is_source_name(name: str) -> bool:
    """Whether ``name`` is a hub repository or a local folder rather than a timm model name."""
    return (name.startswith((HUB_PREFIX, LOCAL_PREFIX))
            or Path(name).expanduser().is_dir())


def resolve_model(name: str, pretrained: bool = False) -> ModelSource:
    """Architecture, pretrained config and (with ``pretrained``) weights file of ``name``.

    Plain timm names are checked by the caller (:func:`~robustrep.nets.classifier.
    check_model_name`); without ``pretrained`` they need nothing else.
    """
    import timm
    if name.startswith(HUB_PREFIX):
        repo = name[len(HUB_PREFIX):]
        arch, cfg, args = read_timm_config(hub_file(repo, ("config.json",), name), name)
        weights = hub_file(repo, HUB_WEIGHT_FILES, name) if pretrained else None
        return ModelSource(name, arch, cfg, args, weights)
    if is_source_name(name):
        folder = Path(name.removeprefix(LOCAL_PREFIX)).expanduser()
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"model {name!r}: {folder} is not a timm model folder "
                                  f"(expected {folder / 'config.json'} and its weights file)")
        arch, cfg, args = read_timm_config(folder / "config.json", name)
        return ModelSource(name, arch, cfg, args, _local_weights(folder, name) if pretrained
                           else None)
    cfg = _pretrained_cfg(name)
    source = ModelSource(name, name, cfg.to_dict() if cfg is not None else {})
    if pretrained:
        if cfg is None or not cfg.hf_hub_id:
            tags = timm.list_pretrained(name.split(".")[0] + ".*")
            raise CheckpointError(
                f"--pretrained: timm has no Hugging Face weights for {name!r} (pretrained tags: "
                f"{', '.join(tags[:6]) or 'none'}); give --pretrained-file FILE instead")
        files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_WEIGHT_FILES
        source.weights = hub_file(cfg.hf_hub_id, files, name)
    return source


def _pretrained_cfg(name: str) -> Any:
    """timm's pretrained config of ``name`` (``arch`` or ``arch.tag``), or None; a tag timm does
    not know (``resnet10t.c3_in1kk``) is one line naming the tags it knows, where timm raised a
    RuntimeError (``timm.is_model`` accepts any tag after a known architecture)."""
    import timm
    try:
        return timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        arch, _, tag = name.partition(".")
        tags = timm.list_pretrained(f"{arch}.*")
        raise CheckpointError(
            f"model {name!r}: timm has no pretrained tag {tag!r} for {arch} (its tags: "
            f"{', '.join(tags[:8]) or 'none'}); give one of them, or {arch} alone for its "
            f"default") from None


# ------------------------------------------------------------------------------------------------
# a model that no robustrep run made: the options are tasks.common.options.ModelOptions


def model_options(args, run: str | None) -> dict[str, Any] | None:
    """The :func:`~robustrep.tasks.common.foreign_model.load_model` keywords and data fields of
    ``args``, or None when a run folder is evaluated; UserError for a wrong combination."""
    from robustrep.tasks.common.errors import UserError
    model = args.model
    if model is None and run is None and args.checkpoint and not args.pretrained:
        model = _checkpoint_model(args.checkpoint)  # timm train.py's file names it
    if model is None:
        extra = [o for o, v in (("--pretrained", args.pretrained),
                                ("--checkpoint", args.checkpoint)) if v]
        if extra:
            raise UserError(f"{extra[0]} needs --model NAME (or give a run folder without it)")
        if run is None:
            raise UserError("give a run folder RUN, or --model NAME with --pretrained or "
                            "--checkpoint FILE")
        described = _model_description_given(args)
        if described:  # a run folder's own (its config.json) would be used without a word
            raise UserError(f"{described} describes a model given with --model; the run folder "
                            f"{run} uses its own (its config.json): drop it")
        return None
    if run is not None:
        raise UserError(f"give a run folder ({run}) or --model {model}, not both")
    if bool(args.pretrained) == (args.checkpoint is not None):
        raise UserError("--model needs its weights: --pretrained or --checkpoint FILE (one)")
    return {"name": model, "pretrained": args.pretrained, "checkpoint": args.checkpoint,
            "num_classes": args.num_classes, "in_chans": args.channels, "mean": args.mean,
            "std": args.std, "image_size": args.image_size, "dataset": args.dataset,
            "classes": args.classes}


def _checkpoint_model(checkpoint: str) -> str:
    """The model a ``--checkpoint`` given without ``--model`` names (timm train.py's
    ``args.model``, or its ``arch``), said on stderr; a file that names none is a UserError
    (it was refused with "--checkpoint needs --model NAME" though timm's names it)."""
    import sys

    from robustrep.tasks.common.errors import UserError
    from robustrep.tasks.common.weights_file import named_model
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--checkpoint {path} does not exist (expected a .pth/.pt/"
                                f".safetensors state dict, or timm train.py's last.pth.tar)")
    trained = named_model(path)
    if trained is None or trained.model is None:
        raise UserError(_run_checkpoint_refusal(checkpoint, path) or (
            f"--checkpoint {checkpoint} names no timm model (timm train.py's args.model, or an "
            f"arch timm knows): give --model NAME, the model it holds"))
    print(f"note: --model {trained.model}, as --checkpoint {checkpoint} names it (its timm "
          f"train.py {trained.where})", file=sys.stderr)
    return trained.model


def _run_checkpoint_refusal(checkpoint: str, path: Path) -> str | None:
    """For a classify run's own checkpoint (``RUN/checkpoints/FILE`` beside a
    ``RUN/config.json`` naming a model) given as ``--checkpoint`` alone: evaluate the run, whose
    config names its model ("names no timm model" sent a user after a name the run keeps);
    else None."""
    run = path.absolute().parent.parent
    if path.absolute().parent.name != "checkpoints":
        return None
    model = saved_option(run, "model")  # None: no config.json, or damaged: the general line
    if not isinstance(model, str):  # a GAN run's: no model of timm's
        return None
    from robustrep.tasks.common.checkpoint import LATEST  # torch: loaded by named_model
    given = Path(checkpoint).parent
    run_name = given.parent if given.name == "checkpoints" else run  # as typed, where it can be
    other = "" if path.name == LATEST else (f" (it evaluates its checkpoints/{LATEST}), or add "
                                            f"--model {model} to evaluate this file")
    return (f"--checkpoint {checkpoint} is a checkpoint of the classify run {run_name} (model "
            f"{model}, as its config.json names it): evaluate the run, robustrep classify eval "
            f"{run_name}{other}")


def _model_description_given(args) -> str | None:
    """The first flag of a model from elsewhere (data, size, normalisation) set away from its
    default, or None."""
    import dataclasses

    from robustrep.tasks.common.options import ModelOptions
    for f in dataclasses.fields(ModelOptions):
        if f.name in ("model", "pretrained", "checkpoint") or not hasattr(args, f.name):
            continue
        if getattr(args, f.name) != f.default:
            return "--" + f.name.replace("_", "-")
    return None


def default_out(name: str, task: str) -> Path:
    """``runs/<task>/<model>-<time>``: a new folder for reports of a model from elsewhere."""
    import time
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name or name)
    return Path("runs") / task / f"{slug.strip('_')}-{time.strftime('%Y%m%d-%H%M%S')}"
