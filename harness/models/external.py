"""Models the harness did not build: a class in a Python file, a Python entry point, a Hugging Face VLM.

``--model path/to/file.py:ClassName``, ``--model <entry point name>`` (group ``frozen_harness.models``)
or ``--model hf:<hub id or folder>`` names one; ``--set key=value`` becomes a constructor keyword
argument. Such a model implements ``harness.models.api`` and is evaluated exactly as the harness's own
(every task, few-shot mode, table and report); it is never trained here.

Its fingerprint (what keys its run records) hashes where it comes from (the file's sha256, the
distribution's version, the hub commit or the weight files' sha256), the class, the constructor
arguments and the model's own ``identity()`` when it has one, so a changed model never reuses answers.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import inspect
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import HarnessError
from harness.models.api import ENTRY_POINT_GROUP, guarded, raised

RECIPE = "external"  # the recipe column of tables and the leaderboard for a model not trained here


@dataclass(frozen=True)
class ExternalSpec:
    name: str  # as tables show it
    source: str  # "file", "entry point" or "hf"
    target: str  # "file.py:Class", "<entry point> = module:attr", the hub id, or "folder <name>"
    location: str = ""  # where to load it from on this machine (a path): not part of the fingerprint
    kwargs: dict = field(default_factory=dict)  # constructor keyword arguments (--set)
    origin: str = ""  # what identifies the code or weights before loading (a sha256, a version, a commit)
    identity: str = ""  # the loaded model's own identity(), if it has one
    eval_images: str = "real"

    @property
    def fingerprint(self) -> str:
        return paths.fingerprint(
            {"source": self.source, "target": self.target, "kwargs": self.kwargs, "origin": self.origin,
             "identity": self.identity}
        )  # fmt: skip

    @property
    def family(self) -> str:
        return self.fingerprint

    train_seed = None  # trained elsewhere, if at all

    @property
    def folder_name(self) -> str:
        return safe_name(self.name)

    trains = False  # constructed, never trained here

    def split_lm_refusal(self) -> str:
        return f"--lm-device-map is for the harness's own <lm>-<recipe> models, not {self.name}"

    def load(self, device: str | None, lm_device_map: str | dict | None = None, progress: bool = True,
             train_missing: bool = True, precision: str = "auto") -> tuple[Any, ExternalSpec]:  # fmt: skip
        """(model, spec): constructed and placed (``load``); it computes as it chooses, whatever ``precision``."""
        from harness import distributed

        with distributed.main_first():
            return load(self, device)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lm": self.name,
            "recipe": {"name": RECIPE},
            "source": self.source,
            "target": self.target,
            "kwargs": self.kwargs,
            "origin": self.origin,
            "identity": self.identity,
            "fingerprint": self.fingerprint,
        }


def safe_name(name: str) -> str:
    """A name usable as one folder name: anything but letters, digits, '.', '_' and '-' becomes '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def is_external(name: str) -> bool:
    """Whether a --model value names a model from outside the registry (cheap: imports nothing)."""
    return name.startswith("hf:") or _file_and_class(name) is not None or _entry_point(name) is not None


def _file_and_class(name: str) -> tuple[Path, str] | None:
    path, sep, cls = name.rpartition(":")
    return (Path(path), cls) if sep and path.endswith(".py") else None


def _entry_point(name: str):
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    return found[0] if found else None


def resolve(name: str, kwargs: dict | None = None) -> ExternalSpec:
    """The spec of an external model (its file imported, its entry point found; no weights loaded)."""
    kwargs = dict(kwargs or {})
    if name.startswith("hf:"):
        from harness.models.hf_vlm import resolve_source

        where = name[3:]
        if not where:
            raise HarnessError("--model hf:<hub id or folder>: nothing after 'hf:'")
        location, origin = resolve_source(where, kwargs.get("revision"))
        if Path(where).is_dir():
            return ExternalSpec(f"hf:{Path(where).resolve().name}", "hf", f"folder {Path(where).resolve().name}",
                                location, kwargs, origin)  # fmt: skip
        return ExternalSpec(name, "hf", where, location, kwargs, origin)
    file_class = _file_and_class(name)
    if file_class is not None:
        path, cls_name = file_class
        cls = load_class(path, cls_name)
        target = f"{path.name}:{cls_name}"
        origin = f"sha256:{paths.file_sha256(path)}"
        name = checked_name(_display_name(cls, cls_name), f"{path}:{cls_name}")
        return ExternalSpec(name, "file", target, f"{path.resolve()}:{cls_name}", kwargs, origin)
    ep = _entry_point(name)
    if ep is None:
        raise HarnessError(f"--model {name}: not an external model")
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "unknown distribution"
    return ExternalSpec(name, "entry point", f"{name} = {ep.value}", name, kwargs, dist)


def checked_name(name: str, where: str) -> str:
    """A model's name as tables show it, refused in one line when it holds a control character (a line break, a
    tab): it would break table rows and run logs. Other text, even ``=`` or ``|``, is escaped where it is written."""
    bad = sorted({c for c in name if unicodedata.category(c) in ("Cc", "Zl", "Zp")})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise HarnessError(f"{where}: the model's name {name!r} holds control characters ({shown}); name it without")
    return name


def _display_name(cls, fallback: str) -> str:
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) and name.strip() else fallback


def load_class(path: Path, cls_name: str):
    """The class ``cls_name`` defined in the Python file ``path`` (imported once per process)."""
    if not path.is_file():
        raise HarnessError(f"--model {path}:{cls_name}: no file {path}")
    module_name = f"harness_user_model_{paths.file_sha256(path)[:16]}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            del sys.modules[module_name]
            raise HarnessError(f"{path}:{err.lineno}: {err.msg}") from None
        except ImportError as err:
            del sys.modules[module_name]
            raise HarnessError(f"{path}: importing it failed: {err}") from None
        except KeyboardInterrupt:
            del sys.modules[module_name]
            raise
        except BaseException as err:  # the user's code raised (or exited) while it was imported
            del sys.modules[module_name]
            raise HarnessError(f"{path}: importing it raised {raised(err)} (--debug shows the traceback)") from err
    cls = getattr(module, cls_name, None)
    if cls is None:
        candidates = [
            n for n, v in vars(module).items() if inspect.isclass(v) and callable(getattr(v, "generate", None))
        ]
        hint = f" (classes there with generate: {', '.join(candidates)})" if candidates else ""
        raise HarnessError(f"{path}: no class '{cls_name}'{hint}")
    return cls


def load(spec: ExternalSpec, device: str | None = None):
    """(model, spec): the model constructed and placed, and its spec with the model's own identity."""
    from harness.models.devices import pick_device

    if spec.source == "hf":
        from harness.models.hf_vlm import HFVisionLanguageModel

        factory, what = HFVisionLanguageModel, "the hf: adapter"
        kwargs = {"source": spec.location, **spec.kwargs}
    elif spec.source == "file":
        path, cls_name = _file_and_class(spec.location)
        factory, what, kwargs = load_class(path, cls_name), spec.target, spec.kwargs
    else:
        ep = _entry_point(spec.location)
        if ep is None:
            raise HarnessError(f"--model {spec.name}: its entry point is no longer installed")
        try:
            factory = ep.load()
        except (ImportError, AttributeError) as err:
            raise HarnessError(f"entry point {spec.target}: loading it failed: {err}") from None
        what, kwargs = spec.target, spec.kwargs
    _check_arguments(factory, kwargs, what)
    try:
        model = factory(**kwargs)
    except (HarnessError, KeyboardInterrupt):
        raise
    except BaseException as err:  # the user's constructor raised or exited: say where and what, not a traceback
        where = spec.location if spec.source == "file" else what
        raise HarnessError(f"{where}: constructing the model raised {raised(err)} (--debug shows the "
                           "traceback)") from err  # fmt: skip
    if not callable(getattr(model, "generate", None)):
        raise HarnessError(
            f"{what}: the model has no generate(prompts, max_new_tokens, stop) method (the interface: harness/models/api.py)"
        )
    if callable(getattr(model, "to", None)):
        device = pick_device(device)
        with guarded(model, "to"):
            model = model.to(device) or model
    name = getattr(model, "name", None)
    if spec.source != "hf" and isinstance(name, str) and name.strip():  # the instance may name itself by its settings
        spec = dataclasses.replace(spec, name=checked_name(name.strip(), what))
    identity = getattr(model, "identity", None)
    if callable(identity):
        with guarded(model, "identity"):
            value = identity()
        spec = dataclasses.replace(
            spec, identity=value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        )
    return model, spec


def _check_arguments(factory, kwargs: dict, what: str) -> None:
    """Constructor arguments that the class does not take are one line, before anything is built."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        known = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
        raise HarnessError(f"--set for {what}: {err} (it takes: {', '.join(known) or 'no arguments'})") from None
