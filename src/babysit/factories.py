"""A user's code named in a spec: `module:function` (an importable module) or `file.py:function`
(a file, relative to the spec's folder). model.factory, data.factory and `loss: python:...` all
name their code this way.

A spec is copied into every run folder (spec.yaml) and read back from there by --resume, `babysit
eval`, ensembles and fine-tuning, far from the folder it was written in; so load_spec turns a
reference to code beside the spec into the file's absolute path (`resolve`), and the copy names
the same code wherever it is read.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from babysit.errors import SpecError

FORM = "'module:function' or 'file.py:function'"


def split_ref(ref: str, field: str) -> tuple[str, str]:
    """(module or file, function) of a reference; a SpecError names the field when it is malformed."""
    where, sep, name = ref.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise SpecError(f"{field}: {ref!r} is not {FORM}, e.g. 'my_models:build_net'")
    return where, name


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def resolve(ref: str, base: Path, field: str) -> str:
    """`ref` with code beside the spec (in `base`) named by absolute path: a relative file.py, and
    a module whose file lies in `base` (`my_models` for base/my_models.py or base/my_models/).
    Other modules are left to the import system (installed packages, the working directory)."""
    where, name = split_ref(ref, field)
    if _is_file(where):
        path = Path(where)
        return f"{path if path.is_absolute() else (base / path).resolve()}:{name}"
    rel = Path(*where.split("."))
    for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
        if candidate.is_file():
            return f"{candidate.resolve()}:{name}"
    return ref


def _load_file(path: Path):
    """Import a .py file once (by absolute path) under a name of its own; its folder is on
    sys.path while it runs, so it may import the files beside it."""
    path = path.resolve()
    name = f"babysit_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: classes defined in it can be pickled by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module


def load(ref: str, field: str) -> Callable:
    """The callable `ref` names. A missing file, module or function is a SpecError naming the
    field; an error raised by the user's module itself keeps its traceback (it is their bug)."""
    where, name = split_ref(ref, field)
    if _is_file(where):
        path = Path(where)
        if not path.is_file():
            raise SpecError(f"{field}: no file {path} (from {ref!r}); a relative file is read from "
                            "the spec's folder")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (where == exc.name or where.startswith(exc.name + ".")):
                raise  # the module was found and failed to import something of its own
            raise SpecError(f"{field}: no module {where!r} (from {ref!r}); give a module on the Python "
                            "path or a file.py beside the spec") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise SpecError(f"{field}: {where} has no function {name!r} (from {ref!r}); its callables: "
                        f"{', '.join(public) or 'none'}")
    return fn


def call(fn: Callable, args: dict, field: str, **auto) -> Any:
    """fn(**args), with each of `auto` added when fn takes a parameter of that name and `args`
    does not give it (a model factory's num_classes and input_shape). Arguments fn does not take
    are a SpecError naming `field` and fn's parameters, before any of the user's code runs."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: call it as given
        return fn(**args)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = {**{k: v for k, v in auto.items() if k in sig.parameters and k not in args}, **args}
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        params = ", ".join(sig.parameters) or "none"
        raise SpecError(f"{field}: {exc} ({getattr(fn, '__qualname__', fn)} takes: {params}"
                        f"{'; it also accepts any keyword' if takes_any else ''})") from None
    return fn(**kwargs)
