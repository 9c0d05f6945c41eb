"""The OpenOOD v1.5 benchmark (:func:`openood_benchmark`): the image lists of an ID dataset and
of its near- and far-OOD sets, as ``imagelist:`` specs, and the checks they need before they are
read in the classifier's shape.

OpenOOD's ``data`` folder holds ``benchmark_imglist/<id>/{train,test}_<id>.txt`` and
``test_<ood>.txt`` lists, with the images under ``images_classic/`` (CIFAR) or
``images_largescale/`` (ImageNet). The near-/far-OOD groups per ID dataset are those of OpenOOD's
``configs/datasets/<id>/<id>_ood.yml`` (``Jingkang50/OpenOOD``), e.g. CIFAR-10: near = CIFAR-100,
TinyImageNet; far = MNIST, SVHN, Textures, Places365. A list is one ``relative/path label`` per
line (Zhang et al., "OpenOOD v1.5", 2023), read as any ``imagelist:ROOT:LISTFILE`` set
(:mod:`robustrep.tasks.ood.datasets`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood.data_specs import split_spec
from robustrep.tasks.ood.datasets import BadData, DataContext, first_image, list_lines

_C, _L = "images_classic", "images_largescale"
_IMAGENET_OOD = {"near": {"ssb_hard": (_L, "imagenet/test_ssb_hard.txt"),
                          "ninco": (_L, "imagenet/test_ninco.txt")},
                 "far": {"inaturalist": (_L, "imagenet/test_inaturalist.txt"),
                         "textures": (_C, "imagenet/test_textures.txt"),
                         "openimage_o": (_L, "imagenet/test_openimage_o.txt")}}
# ID name -> (image folder of the ID lists, {near/far: {OOD name: (image folder, list)}}), from
# OpenOOD v1.5's configs/datasets/<id>/<id>.yml and <id>_ood.yml.
OPENOOD_V15: dict[str, tuple[str, dict[str, dict[str, tuple[str, str]]]]] = {
    "cifar10": (_C, {"near": {"cifar100": (_C, "cifar10/test_cifar100.txt"),
                              "tin": (_C, "cifar10/test_tin.txt")},
                     "far": {"mnist": (_C, "cifar10/test_mnist.txt"),
                             "svhn": (_C, "cifar10/test_svhn.txt"),
                             "texture": (_C, "cifar10/test_texture.txt"),
                             "places365": (_C, "cifar10/test_places365.txt")}}),
    "cifar100": (_C, {"near": {"cifar10": (_C, "cifar100/test_cifar10.txt"),
                               "tin": (_C, "cifar100/test_tin.txt")},
                      "far": {"mnist": (_C, "cifar100/test_mnist.txt"),
                              "svhn": (_C, "cifar100/test_svhn.txt"),
                              "texture": (_C, "cifar100/test_texture.txt"),
                              "places365": (_C, "cifar100/test_places365.txt")}}),
    "imagenet200": (_L, _IMAGENET_OOD),
    "imagenet": (_L, _IMAGENET_OOD),
}


def _data_folder_hint(given: Path) -> str:
    """``; give --openood DIR`` when ``given`` lies inside OpenOOD's data folder DIR (a list
    folder ``benchmark_imglist/cifar10``, or ``images_classic``), else nothing."""
    inside = [p.parent for p in (given, *given.parents) if p.name == "benchmark_imglist"]
    if not inside and given.name in (_C, _L):
        inside = [given.parent]
    return f"; give --openood {inside[0]}, the folder holding it" if inside else ""


@dataclass
class OpenOODBenchmark:
    """The OpenOOD v1.5 sets of one ID dataset as ``imagelist:`` specs."""

    id_name: str
    id_test: str
    id_train: str
    groups: dict[str, dict[str, str]]  # "near"/"far" -> OOD name -> imagelist spec


def openood_benchmark(data_dir: str | os.PathLike, id_name: str | None) -> OpenOODBenchmark:
    """The OpenOOD v1.5 benchmark of ``id_name`` under OpenOOD's ``data_dir`` (the folder holding
    ``benchmark_imglist/``; a path to ``benchmark_imglist`` itself is accepted too).

    Every list file is checked here, so a missing one is reported before any scoring.
    """
    if id_name not in OPENOOD_V15:
        raise ConfigError(f"the OpenOOD v1.5 benchmark has no ID dataset {id_name!r}; valid: "
                          f"{', '.join(OPENOOD_V15)} (pass --openood-id)")
    data = Path(data_dir).expanduser()
    if data.name == "benchmark_imglist":
        data = data.parent
    lists = data / "benchmark_imglist"
    if not lists.is_dir():
        raise FileNotFoundError(f"OpenOOD benchmark lists not found: expected {lists} (OpenOOD's "
                                f"data folder holds benchmark_imglist/ and images_classic/)"
                                f"{_data_folder_hint(data)}")
    id_images, groups = OPENOOD_V15[id_name]

    def spec(images: str, list_file: str) -> str:
        path = lists / list_file
        if not path.is_file():
            raise FileNotFoundError(f"OpenOOD v1.5 list {path} not found (the {id_name} "
                                    "benchmark needs it; see OpenOOD's scripts/download)")
        return f"imagelist:{data / images}:{path}"

    return OpenOODBenchmark(
        id_name, spec(id_images, f"{id_name}/test_{id_name}.txt"),
        spec(id_images, f"{id_name}/train_{id_name}.txt"),
        {g: {n: spec(*where) for n, where in sets.items()} for g, sets in groups.items()})


def stored_shape(spec: str) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the first image the ``imagelist:`` ``spec`` lists, as stored (1 channel
    for a grey image, 3 for colour), before the loader converts it to the classifier's shape;
    None when it cannot be opened (the loader names the file)."""
    from robustrep.data.images import open_image
    name, rest = split_spec(spec)
    path = first_image(name, rest)
    try:
        with open_image(path) as image:
            grey = image.getbands()[0] in ("1", "L", "I", "F")  # "LA" and 16-bit grey too
            return (1 if grey else 3, image.height, image.width)
    except Exception:  # PIL raises many types; the loader's verify names the file
        return None


def check_openood_shape(bench_id: str, spec: str, ctx: DataContext, what: str) -> bool:
    """Whether OpenOOD's ID images of the list ``spec`` (of the benchmark ``bench_id``, which
    ``what`` names) are stored in another shape than the classifier's ``ctx.shape``: image lists
    are always converted to it, so CIFAR-10's colour images became grey for a 1-channel model
    without a word, where ``--id cifar10`` is refused unless ``--resize``. The same rule here:
    refused without ``ctx.resize``. The sizes are compared for the fixed-size images_classic
    lists only (ImageNet's images differ from one another, and are resized as folders are)."""
    got = stored_shape(spec)
    if got is None:
        return False
    sized = OPENOOD_V15[bench_id][0] == _C
    want = tuple(ctx.shape) if sized else (ctx.shape[0], *got[1:])
    if got == want:
        return False
    if not ctx.resize:
        raise BadData(f"{what}: OpenOOD's {bench_id} images have shape {got} (C, H, W) but the "
                      f"classifier takes {tuple(ctx.shape)}; pass --resize to resize and convert "
                      f"them to {tuple(ctx.shape)}, or give ID data of that shape with --id and "
                      f"--fit-data")
    return True


def list_labels(spec: str) -> set[int]:
    """The labels the ``imagelist:`` ``spec`` lists (each line's last token); a line that is
    not ``relative/path label`` is left for the loader to name."""
    _, rest = split_spec(spec)
    labels = set()
    for line in list_lines(Path(":".join(rest[1:])).expanduser()):
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) == 2 and not parts[0].startswith("#") and parts[1].lstrip("-").isdigit():
            labels.add(int(parts[1]))
    return labels
