"""Registries of code: things that register themselves (data sources, task kinds, metrics, encoder weight
sources), as timm's ``@register_model`` does, extended by other packages through entry points."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import logging
import pkgutil
from typing import Generic, TypeVar

from harness.errors import unknown_name

T = TypeVar("T")
log = logging.getLogger("harness")


class Plugins(Generic[T]):
    """Things registered by code, as timm's ``@register_model`` does: every module of the built-in
    ``packages`` registers its items when imported (so a new one is a new module, with no central list to
    edit), and installed packages add theirs through the entry-point ``group`` (``name = module:object``;
    the object is registered under the entry point's name unless importing it registered it already)."""

    def __init__(self, kind: str, group: str, packages: str | tuple[str, ...]) -> None:
        self.kind, self.group = kind, group
        self.packages = (packages,) if isinstance(packages, str) else packages
        self._items: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, item: T) -> T:
        self._items[name] = item
        return item

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package in self.packages:
            module = importlib.import_module(package)
            for info in pkgutil.iter_modules(module.__path__):
                importlib.import_module(f"{package}.{info.name}")
        for ep in importlib.metadata.entry_points(group=self.group):
            try:
                item = ep.load()
            except Exception as exc:  # a broken plugin is reported, and does not stop the rest
                log.warning("%s %s (entry point %s): cannot load: %s", self.kind, ep.name,
                                                     ep.value, exc)  # fmt: skip
                continue
            self._items.setdefault(ep.name, item)

    @property
    def items(self) -> dict[str, T]:
        self._load()
        return self._items

    def get(self, name: str) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self.items) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.items if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self.items
