"""The registry of likelihoods p(x|z): name -> decoder head, plus the facts that need no
TensorFlow.

``kv.VAE(likelihood=NAME)`` builds the head registered under NAME; ``config.LIKELIHOODS``
(the choices of ``kvae fit --likelihood``) lists the names; the data pipeline asks
``needs_binarized_data(NAME)`` whether to binarise images (each pixel drawn 1 with
probability its grey level, Salakhutdinov & Murray 2008). Heads are named as
``"module:ClassName"`` and imported only when a model asks for one, so this module, and the
``kvae`` command's help and argument checks, never import TensorFlow.

Everything else about a likelihood (its distribution, data check, export outputs and their
meaning) belongs to its head, an ``keras_vae.layers.ImageDecoder`` subclass (see
``layers/decoder.py``). Adding a likelihood touches one head module and one ``register``
call, in the library or in the user's own code::

    from keras_vae import likelihoods
    likelihoods.register("laplace", LaplaceDecoder)      # or "my_package.heads:LaplaceDecoder"
    model = kv.VAE(input_shape=(28, 28, 1), likelihood="laplace")

A model saved with a user's likelihood reloads where that ``register`` call (and Keras'
``register_keras_serializable`` of the head) has run.
"""

import collections.abc
import dataclasses
import importlib

from keras_vae.checks import check_choice
from keras_vae.errors import ConfigError

DEFAULT = "bernoulli"  # kv.VAE's likelihood when neither a name nor a head is given


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One registered likelihood.

    Attributes:
        name: the name models, configs and the ``kvae`` command use.
        head: the decoder head class, or where to import it from, ``"module:ClassName"``.
        binarize: the data are binarised grey levels; equals the head's ``binarize``.
    """

    name: str
    head: object
    binarize: bool = False


_REGISTRY = {}


def register(name, head, binarize=None, replace=False):
    """Registers the decoder head ``head`` under ``name``; returns its ``Likelihood``.

    Args:
        name: a new name (lower-case words, e.g. "laplace").
        head: an ``ImageDecoder`` subclass, or ``"module:ClassName"`` to import it lazily.
        binarize: whether its data are binarised; default: the class's ``binarize``, or
            False for a ``"module:ClassName"`` (checked against the class once imported).
        replace: allow replacing a registered name.
    """
    if not (isinstance(name, str) and name and name == name.strip() and " " not in name):
        raise ConfigError(f"A likelihood name must be a non-empty word such as 'laplace'; "
                          f"received {name!r}.")
    if name in _REGISTRY and not replace:
        raise ConfigError(f"The likelihood {name!r} is already registered (to "
                          f"{_describe(_REGISTRY[name].head)}); pass replace=True or choose "
                          f"another name.")
    if isinstance(head, str):
        if head.count(":") != 1 or not all(head.split(":")):
            raise ConfigError(f"head must be a class or 'module:ClassName'; received {head!r}.")
        binarize = bool(binarize)
    elif isinstance(head, type):
        binarize = getattr(head, "binarize", False) if binarize is None else bool(binarize)
    else:
        raise ConfigError(f"head must be a decoder head class or 'module:ClassName'; "
                          f"received {type(head).__name__}.")
    entry = _REGISTRY[name] = Likelihood(name, head, binarize)
    return entry


def unregister(name):
    """Removes ``name`` from the registry (for tests and for replacing a user's head)."""
    get(name)
    del _REGISTRY[name]


def names():
    """The registered likelihood names, in registration order (the built-ins first)."""
    return tuple(_REGISTRY)


def get(name):
    """The ``Likelihood`` registered under ``name``; ConfigError listing the valid names."""
    return _REGISTRY[check_choice("likelihood", name, names())]


def needs_binarized_data(name):
    """True when the data of likelihood ``name`` are binarised grey levels (no TensorFlow)."""
    return get(name).binarize


# What the data of a likelihood are (``data_kind``): the data pipeline's value rule.
DATA_KINDS = ("binary", "unit_interval", "real", "levels")
# The kinds of the non-binarised likelihoods that are not "real" (minimal stand-in until the
# heads register their own kind).
_DATA_KINDS = {"continuous_bernoulli": "unit_interval", "logistic": "levels",
               "logistic_mixture": "levels", "categorical": "levels"}


def data_kind(name):
    """What the data of likelihood ``name`` are (no TensorFlow), one of ``DATA_KINDS``:
    "binary" (binarised grey levels, Bernoulli), "unit_interval" (continuous values in
    [0, 1]), "real" (any real values; images as grey levels in [0, 1]) or "levels" (integers
    0..L-1; 8-bit images as 0..255)."""
    if get(name).binarize:
        return "binary"
    return _DATA_KINDS.get(name, "real")


def head_class(name):
    """The decoder head class of likelihood ``name``, imported on first use."""
    entry = get(name)
    head = entry.head
    if isinstance(head, str):
        module, class_name = head.split(":")
        try:
            head = getattr(importlib.import_module(module), class_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"The likelihood {name!r} is registered as {entry.head!r}, which "
                              f"cannot be imported ({error}); register it again with the "
                              f"right 'module:ClassName'.") from None
    if bool(getattr(head, "binarize", False)) != entry.binarize:
        raise ConfigError(f"The likelihood {name!r} is registered with "
                          f"binarize={entry.binarize} but its head {head.__name__} says "
                          f"binarize={not entry.binarize}; register it with "
                          f"binarize={not entry.binarize}.")
    return head


def name_of(decoder):
    """The registered name of a decoder head instance (its own class first, else the most
    derived registered class it extends); None when it is no registered head."""
    classes = {name: head_class(name) for name in names()}
    for name, head in classes.items():
        if type(decoder) is head:
            return name
    matches = [(len(head.__mro__), name) for name, head in classes.items()
               if isinstance(decoder, head)]
    return max(matches)[1] if matches else None


class _Heads(collections.abc.Mapping):
    """name -> decoder head class of every registered likelihood, imported when asked for."""

    def __getitem__(self, name):
        if name not in _REGISTRY:
            raise KeyError(name)
        return head_class(name)

    def __contains__(self, name):
        return name in _REGISTRY

    def __iter__(self):
        return iter(names())

    def __len__(self):
        return len(_REGISTRY)


HEADS = _Heads()


def _describe(head):
    return head if isinstance(head, str) else f"{head.__module__}:{head.__qualname__}"


register("bernoulli", "keras_vae.layers.bernoulli:BernoulliDecoder", binarize=True)
register("normal", "keras_vae.layers.normal:NormalDecoder")
