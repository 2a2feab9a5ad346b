"""Backend discovery and choice.

Plugins arrive only through the entry-point group `mlp_backends.backends`;
this module never imports a plugin by name. Discovery and probes run once per
process (on first use, never at import) and are cached; `refresh()` forgets
them, for tests and for long-lived processes that install a plugin.

Choice precedence: explicit argument > `use_backend(...)` context >
`MLP_BACKEND` environment variable > auto. Auto probes only what it must: a
backend whose GPU drivers are absent (mlp_backends/drivers.py) is passed over
without importing its library; `list_backends()` still probes every one.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from importlib.metadata import entry_points
from typing import Iterator

from . import drivers
from .backend import Backend, BackendInfo, Probe
from .errors import BackendError, one_line

GROUP = "mlp_backends.backends"
ENV_VAR = "MLP_BACKEND"

log = logging.getLogger(__name__)

_context: contextvars.ContextVar[str | Backend | None] = contextvars.ContextVar(
    "mlp_backends_backend", default=None
)
_lock = threading.Lock()
_plugins: dict[str, tuple[type[Backend] | None, str]] | None = None  # name -> (class, source)
_infos: dict[str, BackendInfo] = {}
_instances: dict[str, Backend] = {}


def discover_plugins() -> dict[str, tuple[type[Backend] | None, str]]:
    """Every plugin of the entry-point group, loaded once: name -> (class, or None when it
    failed to load, and where it came from or why it failed). A broken plugin becomes an
    unusable row, never a crash."""
    global _plugins
    with _lock:
        if _plugins is not None:
            return _plugins
        plugins: dict[str, tuple[type[Backend] | None, str]] = {}
        for ep in entry_points(group=GROUP):
            if ep.name in plugins:
                continue  # the first distribution on sys.path wins, like imports
            source = ep.value + (f" ({ep.dist.name})" if ep.dist else "")
            try:
                cls = ep.load()
                if not (isinstance(cls, type) and issubclass(cls, Backend)):
                    raise TypeError(f"{ep.value} is not a mlp_backends.Backend subclass")
            except Exception as exc:  # noqa: BLE001 - a plugin may fail any way it likes
                plugins[ep.name] = (None, source)
                _infos[ep.name] = BackendInfo(
                    ep.name, False, f"plugin failed to load: {one_line(exc)}", source=source
                )
                continue
            plugins[ep.name] = (cls, source)
        _plugins = plugins
        return plugins


def _probe(name: str) -> BackendInfo:
    if name in _infos:
        return _infos[name]
    cls, source = discover_plugins()[name]
    assert cls is not None  # a failed load already has its row in _infos
    try:
        found = cls.probe()
        if not isinstance(found, Probe):
            raise TypeError(f"probe() returned {type(found).__name__}, not Probe")
    except Exception as exc:  # noqa: BLE001 - probe() must not raise, but may
        found = Probe(False, f"probe failed: {one_line(exc)}")
    info = BackendInfo(
        name=name,
        usable=found.usable,
        reason="" if found.usable else (found.reason or "not usable (no reason given)"),
        devices=tuple(found.devices),
        version=found.version,
        is_gpu=found.is_gpu,
        priority=cls.priority,
        source=source,
        distributed=bool(getattr(cls, "distributed", False)),
    )
    _infos[name] = info
    return info


def refresh() -> None:
    """Forget discovered plugins, driver checks, probe results and backend instances."""
    global _plugins
    with _lock:
        _plugins = None
        _infos.clear()
        _instances.clear()
        drivers.present.cache_clear()


def backend_info(name: str) -> BackendInfo:
    """The row `list_backends()` would show for one backend, probing only that plugin
    (a name no plugin registers gives an unusable row that says so)."""
    if name not in discover_plugins():
        return BackendInfo(name, False, "no plugin registers this name")
    return _probe(name)


def list_backends(refresh_cache: bool = False) -> list[BackendInfo]:
    """Every registered backend, usable or not, in registration order."""
    if refresh_cache:
        refresh()
    # GPU-capable first, then by the plugin's priority: the order auto considers them.
    return sorted((_probe(name) for name in discover_plugins()), key=lambda i: (-i.priority, i.name))


def usable_names() -> list[str]:
    """The names of the backends that run here, in `list_backends()` order."""
    return [info.name for info in list_backends() if info.usable]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """A backend spec "name[:device]" as (lower-case name, device or None)."""
    name, _, device = spec.strip().partition(":")
    return name.strip().lower(), (device.strip() or None)


def _gpu_candidates() -> list[tuple[str, type[Backend]]]:
    """Loaded plugins auto may pick (priority above 0), highest priority first."""
    rows = [(name, cls) for name, (cls, _) in discover_plugins().items() if cls is not None and cls.priority > 0]
    return sorted(rows, key=lambda row: (-row[1].priority, row[0]))


def _unprobed_reason(cls: type[Backend]) -> str:
    """Why a backend need not be probed for a GPU here, or "" when only a probe can tell."""
    needs = cls.gpu_drivers
    if needs is None or not drivers.missing(tuple(needs)):
        return ""
    return f"no {'/'.join(needs)} driver here, so not probed"


def auto_choice() -> tuple[str, str]:
    """The backend auto picks, and why, in words: a usable GPU backend, else numpy.

    Candidates are probed in priority order and the first usable GPU wins. A
    candidate whose GPU drivers are all absent is not probed at all, so on a
    machine without a GPU driver auto imports no GPU-capable library.
    """
    why = []
    for name, cls in _gpu_candidates():
        skip = _unprobed_reason(cls)
        if skip:
            why.append(f"{name}: {skip}")
            continue
        info = _probe(name)
        if info.usable and info.is_gpu:
            return name, f"a usable GPU backend (devices: {', '.join(info.devices) or 'default'})"
        why.append(f"{name}: {info.reason or 'CPU only'}")
    return "numpy", f"no usable GPU backend ({'; '.join(why) or 'none registered'}); using numpy on the CPU"


def _auto() -> Backend:
    name, why = auto_choice()
    log.info("auto: chose %s: %s", name, why)
    return _instance(name, None)


def _instance(name: str, device: str | None) -> Backend:
    key = f"{name}:{device}"
    if key in _instances:
        return _instances[key]
    plugins = discover_plugins()
    if name not in plugins:
        raise BackendError(
            f"unknown backend {name!r}; registered: {', '.join(plugins) or 'none'}; "
            f"usable here: {', '.join(usable_names()) or 'none'}"
        )
    info = _probe(name)
    if not info.usable:
        raise BackendError(
            f"backend {name!r} is not usable here ({info.reason}); "
            f"usable here: {', '.join(usable_names()) or 'none'}; pick one of those"
        )
    cls = plugins[name][0]
    assert cls is not None
    try:
        backend = cls(device)
    except Exception as exc:  # noqa: BLE001 - a bad device id fails in the library
        raise BackendError(
            f"backend {name!r} cannot use device {device!r} ({one_line(exc)}); "
            f"devices here: {', '.join(info.devices) or 'default only'}"
        ) from exc
    _instances[key] = backend
    return backend


def get_backend(spec: str | Backend | None = None) -> Backend:
    """The backend for `spec`: "auto", "name" or "name:device", or a Backend.

    With no spec: the innermost `use_backend(...)`, else $MLP_BACKEND, else auto.
    A backend named explicitly that cannot run here is an error, never a
    silent fallback.
    """
    if spec is None:
        spec = _context.get()
    if spec is None:
        spec = os.environ.get(ENV_VAR) or "auto"
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, str):
        raise BackendError(f"backend must be a name like 'numpy' or 'torch:cpu', not {type(spec).__name__}")
    name, device = parse_spec(spec)
    if name == "auto":
        if device is not None:
            raise BackendError("'auto' takes no device; name the backend, e.g. 'cupy:1'")
        return _auto()
    return _instance(name, device)


@contextlib.contextmanager
def use_backend(spec: str | Backend) -> Iterator[Backend]:
    """Make `spec` the default backend inside the block (per thread and task)."""
    backend = get_backend(spec)  # fail here, not at first use
    token = _context.set(backend)
    try:
        yield backend
    finally:
        _context.reset(token)
