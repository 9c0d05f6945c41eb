"""Published StyleGAN2 network pickles (stylegan2-ada ``.pkl``) read without running their code.

stylegan2-ada-pytorch (``NVlabs/stylegan2-ada-pytorch``, ``torch_utils/persistence.py``,
``training/training_loop.py``) saves a snapshot as ``pickle.dump`` of a dict with ``G``, ``D``,
``G_ema`` (and ``augment_pipe``, ``training_set_kwargs``). Every network object is a
"persistent class": it pickles as ``persistence._reconstruct_persistent_obj(meta)`` where
``meta`` holds the Python source of ``training/networks.py`` (``module_src``), the class name and
the object's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``...).
Loading it with ``pickle`` imports and runs that source. Here a restricted unpickler maps the few
globals such a file needs onto inert stand-ins: a persistent object becomes a :class:`Record`
(class name and state, the source is never looked at), ``EasyDict`` a dict, tensors and
parameters plain tensors (their storage through ``torch.load(weights_only=True)``), numpy scalars
and arrays through numpy's own reconstructors. Any other global is refused with one line.

The reference's parameter names are then mapped onto :mod:`robustrep.nets.stylegan2`'s networks,
which are built from the recorded ``init_kwargs`` (skip G; orig, skip or resnet D).
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustrep.safe_pickle import ArrayUnpickler
from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from robustrep.nets.stylegan2_ops import fir_filter

NETWORKS = ("G", "D", "G_ema")


class StyleGAN2PickleError(ValueError):
    """The file is not a stylegan2-ada network pickle this module can read."""


class Record:
    """A persistent object of the pickle, inert: its class name and its ``__dict__``."""

    def __init__(self, class_name: str, state: dict[str, Any]):
        self.class_name, self.state = class_name, state


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict whose keys are also attributes)."""


def _persistent_obj(meta: dict[str, Any]) -> Record:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise StyleGAN2PickleError("a persistent object without class metadata")
    return Record(str(meta.get("class_name")), dict(meta.get("state") or {}))


def _storage_from_bytes(data: bytes):
    # The legacy torch.save blob a storage pickles itself as; weights_only refuses any code.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_parameter(data: Tensor, requires_grad: bool = False, backward_hooks=None,
                       *state) -> Tensor:
    return data.detach()


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _persistent_obj,
    ("dnnlib.util", "EasyDict"): lambda: _EasyDict,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda: _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): lambda: _storage_from_bytes,
}
class _RestrictedUnpickler(ArrayUnpickler):
    """Arrays and plain containers (:class:`ArrayUnpickler`) plus the records of ``_ALLOWED``;
    a refused global or persistent id raises :class:`StyleGAN2PickleError`."""

    def __init__(self, file):
        super().__init__(file, allowed=_ALLOWED, what="a stylegan2-ada network pickle")

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except pickle.UnpicklingError:
            raise StyleGAN2PickleError(f"refuses the global {module}.{name} (only tensors, "
                                       f"arrays, plain containers and stylegan2-ada network "
                                       f"records)") from None

    def persistent_load(self, pid):
        raise StyleGAN2PickleError("refuses a persistent id (not a stylegan2-ada network pickle)")


def read_records(path: str | Path) -> dict[str, Any]:
    """The unpickled top-level dict, networks as :class:`Record` (nothing from the file runs)."""
    if zipfile.is_zipfile(path):  # torch.save's format: a checkpoint, not a network pickle
        raise StyleGAN2PickleError("is a zip archive (a torch.save file, such as a robustrep "
                                   "checkpoint?), not a stylegan2-ada network pickle (.pkl)")
    with open(path, "rb") as fh:
        try:
            data = _RestrictedUnpickler(fh).load()
        except StyleGAN2PickleError:
            raise
        except Exception as err:  # truncated or not a pickle at all
            raise StyleGAN2PickleError(f"cannot be read as a pickle ({type(err).__name__}: "
                                       f"{err})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), Record) for k in NETWORKS):
        stats = _statistics_of(data)
        raise StyleGAN2PickleError(
            f"holds FID statistics ({stats}), not the networks {NETWORKS} of a stylegan2-ada "
            f"network pickle" if stats else
            f"is not a stylegan2-ada network pickle (needs {NETWORKS})")
    return data


def _statistics_of(data: Any) -> str | None:
    """What FID statistics a pickle's dict holds, named so the refusal says what the file is:
    stylegan2-ada's cached ``FeatureStats`` (its ``raw_mean``/``raw_cov`` sums) or mu/sigma."""
    keys = set(data) if isinstance(data, dict) else set()
    if {"raw_mean", "num_items"} <= keys:
        return "stylegan2-ada's cached FeatureStats"
    return "mu and sigma" if {"mu", "sigma"} <= keys else None


def record_state(rec: Record, prefix: str = "") -> dict[str, Tensor]:
    """The record's parameters and buffers by dotted name, as ``state_dict`` would give them."""
    out: dict[str, Tensor] = {}
    for group in ("_parameters", "_buffers", "_modules"):
        if not isinstance(rec.state.get(group) or {}, dict):
            raise StyleGAN2PickleError(f"holds {prefix}{group} as a "
                                       f"{type(rec.state[group]).__name__}, not a mapping")
    for group in ("_parameters", "_buffers"):
        for name, value in (rec.state.get(group) or {}).items():
            if value is not None:
                out[prefix + name] = torch.as_tensor(value)
    for name, sub in (rec.state.get("_modules") or {}).items():
        if isinstance(sub, Record):
            out.update(record_state(sub, f"{prefix}{name}."))
    return out


def _kwargs(rec: Record) -> dict[str, Any]:
    kwargs = rec.state.get("_init_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"init_kwargs is a {type(kwargs).__name__}, not a mapping")
    return {k: dict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}


# ---------------------------------------------------------------------------------------------
# building robustrep's networks and mapping names


def build_generator(kwargs: dict[str, Any], force_fp32: bool = False) -> StyleGAN2Generator:
    """A robustrep G for the reference ``Generator``'s ``init_kwargs``."""
    syn, mapping = kwargs.get("synthesis_kwargs", {}), kwargs.get("mapping_kwargs", {})
    arch = syn.get("architecture", "skip")
    if arch != "skip":
        raise StyleGAN2PickleError(f"has a G of architecture {arch!r}; robustrep has the 'skip' "
                                   f"G of every published StyleGAN2 network")
    return StyleGAN2Generator(
        kwargs["z_dim"], kwargs["img_resolution"], kwargs["img_channels"],
        c_dim=kwargs.get("c_dim", 0), w_dim=kwargs["w_dim"],
        mapping_layers=mapping.get("num_layers", 8),
        channel_base=syn.get("channel_base", 32768), channel_max=syn.get("channel_max", 512),
        mapping_lr_mul=mapping.get("lr_multiplier", 0.01), conv_clamp=syn.get("conv_clamp"),
        num_fp16_res=0 if force_fp32 else syn.get("num_fp16_res", 0))


def build_discriminator(kwargs: dict[str, Any], force_fp32: bool = False
                        ) -> StyleGAN2Discriminator:
    """A robustrep D for the reference ``Discriminator``'s ``init_kwargs``."""
    epi = kwargs.get("epilogue_kwargs", {})
    return StyleGAN2Discriminator(
        kwargs["img_resolution"], kwargs["img_channels"], c_dim=kwargs.get("c_dim", 0),
        channel_base=kwargs.get("channel_base", 32768),
        channel_max=kwargs.get("channel_max", 512),
        mbstd_group=epi.get("mbstd_group_size", 4), mbstd_channels=epi.get("mbstd_num_channels", 1),
        conv_clamp=kwargs.get("conv_clamp"), architecture=kwargs.get("architecture", "resnet"),
        num_fp16_res=0 if force_fp32 else kwargs.get("num_fp16_res", 0))


def _mapping_name(rest: str) -> str:
    return re.sub(r"^fc(\d+)\.", r"layers.\1.", rest)


def generator_name(name: str) -> str | None:
    """robustrep's name for a reference G tensor (None: a resampling filter, a constant)."""
    if name.endswith("resample_filter"):
        return None
    if name.startswith("mapping."):
        return "mapping." + _mapping_name(name[len("mapping."):])
    m = re.match(r"synthesis\.b(\d+)\.(.*)$", name)
    if m:
        return f"synthesis.blocks.{int(math.log2(int(m.group(1)))) - 2}.{m.group(2)}"
    return name


def discriminator_name(name: str, img_resolution: int) -> str | None:
    """robustrep's name for a reference D tensor (None: a resampling filter)."""
    if name.endswith("resample_filter"):
        return None
    if name.startswith("mapping."):
        return "mapping." + _mapping_name(name[len("mapping."):])
    m = re.match(r"b(\d+)\.(.*)$", name)
    if not m:
        return name
    res, rest = int(m.group(1)), m.group(2)
    if res == 4:
        return ("trunk." if rest.startswith("fromrgb.") else "epilogue.") + rest
    return f"trunk.blocks.{int(math.log2(img_resolution // res))}.{rest}"


def load_mapped(net: nn.Module, ref_state: dict[str, Tensor], rename) -> nn.Module:
    """Copies the reference tensors into ``net`` under robustrep's names; every tensor of
    ``net`` except ``pl_mean`` must be matched with its shape, and the filters must be ours."""
    mapped = {}
    for name, value in ref_state.items():
        ours = rename(name)
        if ours is None:
            if value.shape != (4, 4) or not torch.allclose(value.float(), fir_filter(),
                                                           atol=1e-6):
                raise StyleGAN2PickleError(f"uses a resampling filter other than [1, 3, 3, 1] "
                                           f"({name})")
            continue
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            # a diverged snapshot: its samples would be NaN (black) without a word
            raise StyleGAN2PickleError(f"holds non-finite weights ({name}); use a snapshot "
                                       f"taken before the run diverged")
        mapped[ours] = value
    own = net.state_dict()
    missing = [k for k in own if k not in mapped and not k.endswith(("resample_filter",
                                                                     "pl_mean"))]
    unknown = [k for k in mapped if k not in own]
    wrong = [k for k in mapped if k in own and own[k].shape != mapped[k].shape]
    if missing or unknown or wrong:
        first = (missing + unknown + wrong)[0]
        raise StyleGAN2PickleError(f"does not match robustrep's StyleGAN2 network ({first}: "
                                   f"{len(missing)} missing, {len(unknown)} unknown, "
                                   f"{len(wrong)} of another shape)")
    net.load_state_dict(mapped, strict=False)
    return net


def load_stylegan2_pickle(path: str | Path, force_fp32: bool = False) -> dict[str, nn.Module]:
    """``{'G', 'D', 'G_ema'}`` as robustrep modules (eval mode) from a stylegan2-ada ``.pkl``.

    ``force_fp32`` runs every block in fp32 (the pickle's ``num_fp16_res`` is ignored; the
    weights are the same). Raises :class:`StyleGAN2PickleError` (one line) for anything else.
    """
    data = read_records(path)
    out: dict[str, nn.Module] = {}
    for key in NETWORKS:
        rec = data[key]
        try:
            kwargs = _kwargs(rec)
            if key == "D":
                net = build_discriminator(kwargs, force_fp32)
                res = kwargs["img_resolution"]
                load_mapped(net, record_state(rec), lambda n: discriminator_name(n, res))
            else:
                net = build_generator(kwargs, force_fp32)
                load_mapped(net, record_state(rec), generator_name)
        except StyleGAN2PickleError as err:  # its weights: named with the network
            raise StyleGAN2PickleError(f"has a {key} that {err}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError,
                ArithmeticError) as err:
            # RuntimeError: torch refusing a size the kwargs imply (a negative z_dim);
            # AttributeError: a list where a mapping belongs; ArithmeticError: channel_base 0
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise StyleGAN2PickleError(f"has a {key} whose init_kwargs robustrep cannot use "
                                       f"({type(err).__name__}: {first})") from None
        out[key] = net.eval()
    return out
