"""Constructor options read without running a plugin's code: from a live signature and its
docstrings' Google-style ``Args:`` sections, or from a module's source with :mod:`ast` (literal
defaults and module constants only). The registry (:mod:`robustrep.registry`) and the network
families (:mod:`robustrep.nets`) state each option once, in the class, and read it here."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import re
import typing
from collections.abc import Container, Iterable, Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """One constructor option: its default, its annotation (as written, else the type of a
    scalar default: :func:`inferred_annotation`) and its help text."""

    default: Any
    annotation: str = ""
    help: str = ""



def arg_help(doc: str) -> dict[str, str]:
    """``{name: text}`` from a Google-style ``Args:`` section (continuation lines joined)."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    inside, current, indent = False, None, None
    for line in lines:
        if not inside:
            inside = line.strip() == "Args:"
            continue
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if width == 0:
            break
        match = re.match(r"(\w+)(?: \(.*?\))?: (.*)", line.strip())
        if match and (indent is None or width <= indent):
            indent, current = width, match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] += " " + line.strip()
    return out


def summary(doc: str | None) -> str:
    lines = inspect.cleandoc(doc or "").splitlines()
    return lines[0] if lines else ""


def merge_help(docs: list[str]) -> dict[str, str]:
    """Help per option from the class's docstring first, then its bases'."""
    out: dict[str, str] = {}
    for doc in docs:
        for k, v in arg_help(doc).items():
            out.setdefault(k, v)
    return out


def annotation_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):  # list[int] is, on 3.10
        return annotation.__name__
    return str(annotation).replace("typing.", "")  # "Optional[float]", not its __name__


# the kinds a flag holds, read from a default where no annotation is written
_INFERRED_KINDS = (bool, int, float, str)


def inferred_annotation(written: str, default: Any) -> str:
    """The annotation as written; where none is written, the type of a scalar default
    (``scale=2`` reads as ``int``, ``mode="sum"`` as ``str``), so that such an option gets its
    command-line flag as an annotated one does (a plugin's ``def __init__(self, scale=2)`` had
    no ``--NAME-scale``, silently). A ``None``, list or tuple default infers nothing."""
    if written or type(default) not in _INFERRED_KINDS:
        return written
    return type(default).__name__


def callable_options(obj: Any) -> dict[str, OptionInfo]:
    """The keyword options of a class's constructor (help from its docstrings' ``Args:``, the
    class's then its bases') or of a function (help from its docstring)."""
    if isinstance(obj, type):
        docs, fn = [c.__doc__ or "" for c in obj.__mro__ if c is not object], obj.__init__
    else:
        docs, fn = [obj.__doc__ or ""], obj
    helps = merge_help(docs)
    params = inspect.signature(fn).parameters.values()
    return {p.name: OptionInfo(p.default if p.default is not p.empty else None,
                               inferred_annotation(annotation_text(p.annotation), p.default),
                               helps.get(p.name, ""))
            for p in params
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}



class NotLiteral(ValueError):
    pass


def literal(node: ast.AST, consts: dict[str, Any]) -> Any:
    """A literal, a module constant, or arithmetic on them (``8 / 255``); else NotLiteral."""
    if isinstance(node, ast.Name):
        if node.id in consts:
            return consts[node.id]
        raise NotLiteral(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult, ast.Add,
                                                             ast.Sub, ast.Pow)):
        a, b = literal(node.left, consts), literal(node.right, consts)
        return {ast.Div: lambda: a / b, ast.Mult: lambda: a * b, ast.Add: lambda: a + b,
                ast.Sub: lambda: a - b, ast.Pow: lambda: a ** b}[type(node.op)]()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -literal(node.operand, consts)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [literal(e, consts) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return {literal(k, consts): literal(v, consts) for k, v in zip(node.keys, node.values)}
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise NotLiteral(ast.dump(node)) from None


def module_constants(tree: ast.Module) -> dict[str, Any]:
    consts: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                stmt.targets[0], ast.Name):
            try:
                consts[stmt.targets[0].id] = literal(stmt.value, consts)
            except (NotLiteral, TypeError, ZeroDivisionError):
                pass
    return consts


def static_options(cls: ast.ClassDef, classes: dict[str, ast.ClassDef],
                    consts: dict[str, Any]) -> dict[str, OptionInfo]:
    chain, node = [], cls
    while node is not None:  # the class and its bases defined in the same module
        chain.append(node)
        base = next((b.id for b in node.bases if isinstance(b, ast.Name) and b.id in classes),
                    None)
        node = classes.get(base) if base else None
    init = next((f for c in chain for f in c.body
                 if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if init is None:
        return {}
    return static_args(init, merge_help([ast.get_docstring(c) or "" for c in chain]), consts)


def static_args(fn: ast.FunctionDef, helps: dict[str, str],
                 consts: dict[str, Any]) -> dict[str, OptionInfo]:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    out = {}
    for a, d in pairs:
        if a.arg != "self":
            default = None if d is None else literal(d, consts)
            written = ast.unparse(a.annotation) if a.annotation else ""
            out[a.arg] = OptionInfo(default, inferred_annotation(written, default),
                                    helps.get(a.arg, ""))
    return out


def parse_module(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImportError(f"no module {module}")
    with open(spec.origin, encoding="utf-8") as f:
        return ast.parse(f.read(), spec.origin)


def read_decorated(module: str, decorator: str) -> list[tuple[list[Any], dict[str, OptionInfo]]]:
    """The ``@decorator(...)`` calls on the top-level classes and functions of ``module``, read
    from its source without importing it: per call, its positional arguments (literals) and the
    options of what it decorates (a class's ``__init__``, a function's parameters) with their
    defaults, annotations and help (``Args:``), as for the built-in methods.

    Raises:
        ImportError, OSError, SyntaxError: the module's source cannot be read.
        ValueError: an argument or default that is not a literal.
    """
    tree = parse_module(module)
    consts = module_constants(tree)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found = []
    for node, deco in decorator_calls(tree.body, (decorator,)):
        args = [literal(a, consts) for a in deco.args]
        if isinstance(node, ast.ClassDef):
            options = static_options(node, classes, consts)
        else:
            options = static_args(node, merge_help([ast.get_docstring(node) or ""]), consts)
        found.append((args, options))
    return found


def decorator_calls(nodes: Iterable[ast.AST],
                    names: Container[str]) -> Iterator[tuple[ast.AST, ast.Call]]:
    """``(node, call)`` for each decorator of ``nodes`` that calls a plain name in ``names``
    (``@register_regularizer("x", ...)``, not ``@mod.register(...)`` nor a bare ``@name``)."""
    for node in nodes:
        for deco in getattr(node, "decorator_list", ()):
            if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name)
                    and deco.func.id in names):
                yield node, deco
