"""Data sources by name. Each data module registers the sources it reads (``SOURCES.add``); another
package adds its own through the ``frozen_harness.sources`` entry-point group (naming a ``Source``).

A task names its source (``source: easyvqa``); ``load`` builds it once per process.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.data.types import Dataset
from harness.errors import HarnessError
from harness.plugins import Plugins


@dataclass(frozen=True)
class Source:
    """A data source: how to load it, and a cheap check of whether it is on this machine."""

    load: Callable[[], Dataset]
    available: Callable[[], str]
    load_hub: Callable[..., Dataset] | None = None  # for a task's `hub:` mapping (dataset_id, splits, columns)
    # Everything ``load`` would find missing, one line each (what, where it is expected, how to get it), without
    # reading the data; none given: one line built from ``available`` (see ``missing``).
    missing: Callable[[], list[str]] | None = None
    # How `harness data build <name>` builds it, for a source that builds itself: ``build(force)`` -> its folder.
    # The table builds of ``harness.data.offline`` (emoji, tuxpaint) are built there instead.
    build: Callable[[bool], Path] | None = None


SOURCES: Plugins[Source] = Plugins("data source", "frozen_harness.sources", "harness.data")


def from_env(variable: str, build: Callable[[Path], Dataset], what: str) -> Callable[[], Dataset]:
    """A loader for data in a folder the user names with an environment variable."""

    def load() -> Dataset:
        folder = os.environ.get(variable)
        if not folder:
            raise HarnessError(f"set {variable} to {what}")
        return build(Path(folder))

    return load


def env_missing(name: str, variable: str, what: str) -> Callable[[], list[str]]:
    """What a ``from_env`` source lacks: its variable, or the folder it names."""

    def missing() -> list[str]:
        folder = os.environ.get(variable, "").strip()
        if not folder:
            return [f"data source {name} needs {variable}: set it to {what}"]
        if not Path(folder).expanduser().is_dir():
            return [f"data source {name}: {variable}={folder}: folder not found; set it to {what}"]
        return []

    return missing


def module_missing(name: str, module: str, install: str) -> Callable[[], list[str]]:
    """What a source read from an installed package lacks: the package."""
    return lambda: [] if importlib.util.find_spec(module) else [f"data source {name} needs the Python package "
                                                               f"{module}: run `{install}`"]  # fmt: skip


def missing(name: str) -> list[str]:
    """What the source ``name`` lacks on this machine, one line each; a source without its own ``missing`` is
    judged by ``available`` (an answer starting with "no" is one line naming the source)."""
    source = SOURCES.get(name)
    if source.missing is not None:
        return source.missing()
    said = source.available()
    if not said.startswith("no"):
        return []
    return [f"data source {name}: {said.removeprefix('no:').strip() or 'not available'}"]


def env_available(variable: str) -> Callable[[], str]:
    return lambda: "yes" if os.environ.get(variable) and Path(os.environ[variable]).exists() else f"no: set {variable}"


def module_available(module: str, install: str) -> Callable[[], str]:
    return lambda: "yes" if importlib.util.find_spec(module) else f"no: {install}"


def needs_mapping(name: str) -> Callable[[], Dataset]:
    def load() -> Dataset:
        raise HarnessError(f"data source {name} needs a task with a `hub:` mapping (dataset_id, splits, columns)")

    return load


def generated() -> str:
    return "yes (generated)"


def from_hub() -> str:
    return "from the hub (or its cache)"


def sources() -> dict[str, Source]:
    return SOURCES.items


_CACHE: dict[str, Dataset] = {}


def load(name: str, hub: dict | None = None) -> Dataset:
    """The data source ``name`` (for hub sources, with a task's ``hub`` mapping), loaded once per process."""
    key = f"{name}|{json.dumps(hub, sort_keys=True)}" if hub else name
    if key not in _CACHE:
        source = SOURCES.get(name)
        if hub and source.load_hub is None:
            raise HarnessError(f"data source {name} takes no `hub:` mapping")
        _CACHE[key] = source.load_hub(**hub, name=name) if hub else source.load()
    return _CACHE[key]
