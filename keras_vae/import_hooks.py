"""Work tied to the first import of another package, without importing that package early.

``import keras_vae`` imports no TensorFlow, so that ``kvae --help`` answers at once; yet a
saved VAE must load with ``keras.models.load_model`` after only ``import keras_vae``. Keras
finds a custom class only once the module that registers it has run (Keras 3.15 imports the
module recorded in a ``.keras`` file by itself only for its own packages: keras, keras_hub,
keras_cv, keras_nlp). So ``when_imported("keras", register)`` runs ``register`` as soon as
Keras has been imported, whoever imports it. ``quiet.py`` uses ``wrap_execution`` to hold
back TensorFlow's start-up lines while TensorFlow's ``__init__`` runs.

Mechanism (PEP 451): a finder placed first on ``sys.meta_path`` asks the other finders for
the spec of a watched module and wraps its loader. Callbacks run when the outermost watched
import completes, never in the middle of one: importing ``keras_vae.layers`` imports Keras,
and the callback then imports ``keras_vae.model``, which needs the finished
``keras_vae.layers``. Every ``keras_vae.*`` import is watched for that reason.
"""

import importlib.abc
import sys
import threading
import warnings

_WATCHED_PACKAGES = ("keras_vae",)  # every submodule of these is watched too
_watched = set()  # top-level names watched: those given to when_imported / wrap_execution
_wrappers = {}  # name -> wrapper(execute, module)
_waiting = []  # (name, callback) until name is imported and no watched import is under way
_state = threading.local()  # .depth: watched imports under way in this thread


def imported(name):
    """True when module ``name`` is in sys.modules and has finished executing."""
    module = sys.modules.get(name)
    return module is not None and not getattr(getattr(module, "__spec__", None),
                                              "_initializing", False)


def when_imported(name, callback):
    """Calls ``callback()`` once ``name`` is imported (at once when it already is and no
    watched import is under way). A callback that raises becomes a warning: it must not
    break the import that triggered it."""
    _waiting.append((name, callback))
    _watched.add(name)
    _install()
    _run_ready()


def wrap_execution(name, wrapper):
    """On the first import of top-level module ``name``, its code runs as
    ``wrapper(execute, module)``, where ``execute()`` runs the module's own code."""
    _wrappers[name] = wrapper
    _watched.add(name)
    _install()


def _install():
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def _run_ready(just_executed=None):
    """Runs the waiting callbacks whose module is imported, unless a watched import is under
    way. ``just_executed``: a module whose code has run but which Python still marks as
    initialising (until its loader returns)."""
    if getattr(_state, "depth", 0):
        return
    for entry in list(_waiting):
        name, callback = entry
        if entry in _waiting and (name == just_executed or imported(name)):
            _waiting.remove(entry)  # first: the callback's own imports must not rerun it
            try:
                callback()
            except Exception as error:  # noqa: BLE001 - reported, never raised into an import
                warnings.warn(f"keras_vae: {getattr(callback, '__name__', callback)} failed "
                              f"after {name} was imported: {error}", RuntimeWarning)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds watched modules through the other finders and wraps their loaders."""

    def find_spec(self, fullname, path, target=None):
        if not (fullname in _watched or fullname.split(".")[0] in _WATCHED_PACKAGES):
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader, _wrappers.pop(fullname, None))
                return spec
        return None


class _Loader(importlib.abc.Loader):
    """Runs the real loader, counting the watched imports under way; anything else (resource
    readers, get_source, ...) is the real loader's."""

    def __init__(self, loader, wrapper):
        self._loader = loader
        self._wrapper = wrapper

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            if self._wrapper is None:
                self._loader.exec_module(module)
            else:
                self._wrapper(lambda: self._loader.exec_module(module), module)
        finally:
            _state.depth -= 1
        _run_ready(just_executed=module.__name__)

    def __getattr__(self, name):
        return getattr(self._loader, name)
