"""Finding and loading plugins: modules that add commands through the registry.

A plugin is a Python module with a `register(registry)` function (and
optionally `API_VERSION = 1`).  They come from, in this order:

1. the plugins shipped with netns-shell (the repository's `plugins/`
   directory, installed as the `netns_shell.builtin_plugins` package);
2. the `netns_shell.plugins` entry-point group of installed distributions
   (each entry point names a module or its `register` function);
3. `*.py` files in the directories given with `--plugin-dir DIR` and in
   `NETNS_SHELL_PLUGIN_PATH` (colon-separated).

Code is never loaded from the current directory, nor from any path inside a
namespace: files are loaded by their absolute path, never through sys.path.
A plugin that fails to import or to register is reported in one line and
skipped; the shell goes on.  `NETNS_SHELL_DISABLE_PLUGINS=a,b` blocks plugins
by name, `--no-plugins` all of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .commands.registry import Registry

__all__ = ["API_VERSION", "PluginLoader", "builtin_plugin", "builtin_plugin_names"]

#: the plugin interface this netns-shell offers
API_VERSION = 1
ENTRY_POINT_GROUP = "netns_shell.plugins"
_BUILTIN_PACKAGE = "netns_shell.builtin_plugins"


@dataclass
class PluginLoader:
    """Loads every plugin into a registry; `warn` gets one line per failure."""

    warn: Callable[[str], None]
    directories: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    loaded: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(
        cls, warn: Callable[[str], None], directories: list[str] | None = None
    ) -> PluginLoader:
        extra = [d for d in os.environ.get("NETNS_SHELL_PLUGIN_PATH", "").split(":") if d]
        disabled = {
            n.strip()
            for n in os.environ.get("NETNS_SHELL_DISABLE_PLUGINS", "").split(",")
            if n.strip()
        }
        return cls(warn, [*(directories or []), *extra], disabled)

    def __call__(self, registry: Registry) -> None:
        for name, load in self._candidates():
            if name in self.disabled:
                continue
            self._load_one(registry, name, load)

    # ---------------------------------------------------------- sources
    def _candidates(self) -> Iterator[tuple[str, Callable[[], Any]]]:
        for path in _builtin_plugin_files():
            name = os.path.basename(path)[:-3]
            yield name, lambda path=path: _module_from_file(path)
        for entry_point in _entry_points():
            yield entry_point.name, entry_point.load
        for directory in self.directories:
            path = os.path.abspath(directory)
            try:
                files = sorted(
                    f for f in os.listdir(path) if f.endswith(".py") and not f.startswith("_")
                )
            except OSError as exc:
                self.warn(f"plugin directory {directory}: {exc.strerror}")
                continue
            for file_name in files:
                full = os.path.join(path, file_name)
                yield file_name[:-3], lambda full=full: _module_from_file(full)

    def _load_one(self, registry: Registry, name: str, load: Callable[[], Any]) -> None:
        registry.source = f"plugin {name}"
        try:
            target = load()
            register = (
                target
                if callable(target) and not isinstance(target, ModuleType)
                else getattr(target, "register", None)
            )
            if register is None:
                raise TypeError("it has no register(registry) function")
            version = getattr(target, "API_VERSION", API_VERSION)
            if version != API_VERSION:
                raise TypeError(f"it needs plugin API {version}, this is {API_VERSION}")
            register(registry)
            self.loaded.append(name)
        except Exception as exc:  # a broken plugin must not take the shell down
            self.warn(f"plugin {name}: not loaded: {type(exc).__name__}: {exc}")
        finally:
            registry.source = "built-in"


def _builtin_plugin_dir() -> str | None:
    """Where the shipped plugins are: inside the installed package, or the checkout's plugins/."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (
        os.path.join(here, "builtin_plugins"),
        os.path.join(os.path.dirname(here), "plugins"),
    ):
        if os.path.isfile(os.path.join(candidate, "__init__.py")):
            return candidate
    try:  # an editable install that maps the package elsewhere
        spec = importlib.util.find_spec(_BUILTIN_PACKAGE)
    except ImportError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return locations[0] if locations else None


def _builtin_plugin_files() -> list[str]:
    directory = _builtin_plugin_dir()
    if directory is None:
        return []
    return sorted(
        os.path.join(directory, f)
        for f in os.listdir(directory)
        if f.endswith(".py") and not f.startswith("_")
    )


def builtin_plugin_names() -> list[str]:
    """The plugins shipped with netns-shell (module names)."""
    return [os.path.basename(path)[:-3] for path in _builtin_plugin_files()]


def builtin_plugin(name: str) -> ModuleType:
    """A shipped plugin's module (`check` uses the ipvs plugin's reader); ImportError if absent."""
    directory = _builtin_plugin_dir()
    path = os.path.join(directory, f"{name}.py") if directory else ""
    if not path or not os.path.isfile(path):
        raise ImportError(f"no built-in plugin {name!r}")
    return _module_from_file(path)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # broken metadata of an unrelated distribution
        return []


def _module_from_file(path: str) -> ModuleType:
    """Import a plugin file by its absolute path under a private module name."""
    name = f"netns_shell_plugin_{abs(hash(path)):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
