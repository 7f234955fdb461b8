"""The columns of latent_history.csv (``runs.LATENT_HISTORY``): KL per latent dimension and
active units per epoch, as the ``LatentMonitor`` callback writes them and ``kvae
training-plot`` reads them. This module owns the column names; it imports no TensorFlow.

One latent layer (the VAE)::

    epoch, active_units, kl_dim_0, ..., kl_dim_{d-1}

Several layers (a hierarchy, layers in ``latent_sizes`` order, here z1 of 8 and z2 of 4)::

    epoch, active_units, active_units_z1, active_units_z2,
    kl_z1_dim_0, ..., kl_z1_dim_7, kl_z2_dim_0, ..., kl_z2_dim_3

KL_i = (1/N) sum_x KL(q(z_i|.) || p(z_i|.)) in nats over the monitor's N fixed images, and
active units #{i : Var_x(E_q[z_i|x]) > 0.01} (Burda et al. 2016, sec. 5.2); ``active_units``
is the total over the layers.
"""

import dataclasses
import re

import numpy as np

from keras_vae.errors import RunError

_LAYER_KL = re.compile(r"^kl_(.+)_dim_(\d+)$")


def history_row(layers):
    """The columns after ``epoch`` for one epoch: ``layers`` is {layer name: (KL per
    dimension [d], active units)} in ``latent_sizes`` order."""
    if len(layers) == 1:
        (kl, active), = layers.values()
        return {"active_units": int(active),
                **{f"kl_dim_{i}": float(value) for i, value in enumerate(kl)}}
    row = {"active_units": int(sum(active for _, active in layers.values()))}
    row.update({f"active_units_{name}": int(active) for name, (_, active) in layers.items()})
    for name, (kl, _) in layers.items():
        row.update({f"kl_{name}_dim_{i}": float(value) for i, value in enumerate(kl)})
    return row


@dataclasses.dataclass
class LatentHistory:
    """latent_history.csv: ``epochs`` [E], ``active_units`` [E] (the total), ``kl`` [E, D]
    (nats, every layer's dimensions in order), and ``layers`` {name: (first column of
    ``kl``, size, active units [E])}: one entry, named None, for a one-layer model."""

    epochs: np.ndarray
    active_units: np.ndarray
    kl: np.ndarray
    layers: dict = dataclasses.field(default_factory=dict)

    def layer_kl(self, name):
        """KL per dimension of layer ``name`` over the epochs [E, size]."""
        start, size, _ = self.layers[name]
        return self.kl[:, start:start + size]


def from_columns(columns, path):
    """The ``LatentHistory`` of latent_history.csv's ``columns`` ({name: values}, in file
    order); RunError naming ``path`` when a column is missing."""
    layer_columns = {}  # layer -> number of its kl columns, in file order
    for name in columns:
        match = _LAYER_KL.match(name)
        if match:
            layer_columns[match.group(1)] = layer_columns.get(match.group(1), 0) + 1
    if layer_columns:
        names = {layer: [f"kl_{layer}_dim_{i}" for i in range(count)]
                 for layer, count in layer_columns.items()}
        required = [f"active_units_{layer}" for layer in names]
    else:
        count = sum(name.startswith("kl_dim_") for name in columns)
        names = {None: [f"kl_dim_{i}" for i in range(count)]}
        required = []
    kl_names = [name for layer in names.values() for name in layer]
    missing = [name for name in ("epoch", "active_units", *required, *kl_names)
               if name not in columns]
    if missing or not kl_names:
        raise RunError(f"{path} lacks the columns {', '.join(missing) or 'kl_dim_0'}; restore "
                       f"the file or delete it.")
    layers, start = {}, 0
    for layer, kl_of_layer in names.items():
        active = (columns["active_units"] if layer is None
                  else columns[f"active_units_{layer}"])
        layers[layer] = (start, len(kl_of_layer), active)
        start += len(kl_of_layer)
    return LatentHistory(columns["epoch"], columns["active_units"],
                         np.stack([columns[name] for name in kl_names], axis=1), layers)
