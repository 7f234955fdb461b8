"""The registry of likelihoods p(x|z): name -> decoder head, plus the facts that need no
TensorFlow.

``kv.VAE(likelihood=NAME)`` builds the head registered under NAME; ``config.LIKELIHOODS``
(the choices of ``kvae fit --likelihood``) lists the names; the data pipeline asks
``data_kind(NAME)`` which data the head takes (one of ``DATA_KINDS``, below) and
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

# What data a head takes (its ``data_kind``, and the registry's ``data``):
DATA_KINDS = {
    "binary": "binarised grey levels, 0 or 1 (each pixel 1 with probability its intensity)",
    "unit_interval": "continuous values in [0, 1] (grey levels divided by 255)",
    "real": "any finite real values, used as given",
    "levels": "integers 0 .. levels - 1 (8-bit pixels: 0 .. 255)",
}

# What -log p(x) / (D ln 2), the bits per dimension that evaluation reports, is for each kind
# of data: a mass for discrete data, a density for continuous ones. Only masses over the 256
# levels are the published 8-bit tables' figure (Salimans et al. 2017; Theis et al. 2016).
BITS_PER_DIM_MEANINGS = {
    "binary": "a mass over {0, 1} per pixel: bits per binarised pixel (comparable across "
              "binarised-data models, not with the 8-bit tables)",
    "levels": "a mass over the levels: bits per value, the figure of the published 8-bit "
              "tables when the levels are the 256 of 8-bit data",
    "unit_interval": "a density on [0, 1], not a mass: add 8 (log2 256) to put it on the "
                     "8-bit tables' scale, where it bounds the discrete figure only for "
                     "uniformly dequantised data (Theis et al. 2016)",
    "real": "a density on the data's own scale, not a mass: it changes with the scaling of "
            "the data and is not comparable with the 8-bit tables",
}


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One registered likelihood.

    Attributes:
        name: the name models, configs and the ``kvae`` command use.
        head: the decoder head class, or where to import it from, ``"module:ClassName"``.
        binarize: the data are binarised grey levels (``data == "binary"``); equals the
            head's ``binarize``.
        data: which data the head takes, one of ``DATA_KINDS``; equals the head's
            ``data_kind``.
    """

    name: str
    head: object
    binarize: bool = False
    data: str = "real"


_REGISTRY = {}


def register(name, head, binarize=None, replace=False, data=None):
    """Registers the decoder head ``head`` under ``name``; returns its ``Likelihood``.

    Args:
        name: a new name (lower-case words, e.g. "laplace").
        head: an ``ImageDecoder`` subclass, or ``"module:ClassName"`` to import it lazily.
        binarize: whether its data are binarised, the same as ``data="binary"``; default:
            from ``data``.
        replace: allow replacing a registered name.
        data: which data it takes, one of ``DATA_KINDS``; default: the class's
            ``data_kind``, or for a ``"module:ClassName"`` "binary" when ``binarize`` else
            "real" (checked against the class once imported).
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
    elif not isinstance(head, type):
        raise ConfigError(f"head must be a decoder head class or 'module:ClassName'; "
                          f"received {type(head).__name__}.")
    if data is None:
        if binarize is not None:
            data = "binary" if binarize else "real"
        else:
            data = _head_data_kind(head) if isinstance(head, type) else "real"
    check_choice("data", data, tuple(DATA_KINDS))
    if binarize is not None and bool(binarize) != (data == "binary"):
        raise ConfigError(f"binarize={bool(binarize)} contradicts data={data!r} for the "
                          f"likelihood {name!r}: binarised data are data='binary'; pass one "
                          f"of the two.")
    entry = _REGISTRY[name] = Likelihood(name, head, data == "binary", data)
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


def data_kind(name):
    """Which data likelihood ``name`` takes, one of ``DATA_KINDS`` (no TensorFlow):
    "binary" (binarised grey levels: bernoulli), "unit_interval" (values in [0, 1]:
    continuous_bernoulli), "real" (any finite values: normal, laplace) or "levels"
    (integers 0 .. levels - 1, 8-bit pixels 0 .. 255: logistic, logistic_mixture,
    categorical)."""
    return get(name).data


def bits_per_dim_meaning(name):
    """What the bits per dimension of likelihood ``name`` measure (``BITS_PER_DIM_MEANINGS``
    of its data kind): a mass, comparable with the 8-bit tables for 256 levels, or a
    density, which is not."""
    return BITS_PER_DIM_MEANINGS[data_kind(name)]


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
    if _head_data_kind(head) != entry.data:
        raise ConfigError(f"The likelihood {name!r} is registered with data={entry.data!r} "
                          f"but its head {head.__name__} says data_kind="
                          f"{_head_data_kind(head)!r}; register it with "
                          f"data={_head_data_kind(head)!r}.")
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


def _head_data_kind(head):
    """A head class's ``data_kind``; a head that sets only ``binarize`` (written before
    data_kind existed) takes "binary" or "real" data."""
    kind = getattr(head, "data_kind", None)
    if kind is None or (getattr(head, "binarize", False) and kind != "binary"):
        return "binary" if getattr(head, "binarize", False) else "real"
    return kind


def _describe(head):
    return head if isinstance(head, str) else f"{head.__module__}:{head.__qualname__}"


register("bernoulli", "keras_vae.layers.bernoulli:BernoulliDecoder", data="binary")
register("normal", "keras_vae.layers.normal:NormalDecoder", data="real")
register("continuous_bernoulli",
         "keras_vae.layers.continuous_bernoulli:ContinuousBernoulliDecoder",
         data="unit_interval")
register("laplace", "keras_vae.layers.laplace:LaplaceDecoder", data="real")
register("logistic", "keras_vae.layers.logistic:LogisticDecoder", data="levels")
register("logistic_mixture", "keras_vae.layers.logistic_mixture:LogisticMixtureDecoder",
         data="levels")
register("categorical", "keras_vae.layers.categorical:CategoricalDecoder", data="levels")
