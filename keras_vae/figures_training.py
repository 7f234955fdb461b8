"""Pictures of training and of the rate-distortion trade-off: ``kvae training-plot`` and
``kvae rate-distortion``. They read files of run folders, and need no model.

Training curves come from RUN/history.csv (``callbacks.HistoryWriter``: one row per epoch,
columns ``epoch``, ``loss``, ``elbo``, ``reconstruction``, ``kl``, their ``val_`` twins when the
run had a validation split, ``kl_weight`` with a KL warm-up, and for a hierarchy each
layer's KL ``kl_z1``, ``kl_z2``, ...), all in nats per example, and from
RUN/latent_history.csv when present (``runs.LATENT_HISTORY``, written by the
``LatentMonitor`` callback, columns in ``latent_history``: the KL of the posterior per
dimension in nats, averaged over the monitor's fixed images, validation images when the run
has them, and the active units, per layer for a hierarchy). KL per dimension over the
epochs is the picture of posterior collapse: a dimension whose KL falls to ~0 nats carries
no information about x (Bowman et al. 2016).

Rate-distortion (Alemi et al. 2018, "Fixing a broken ELBO"): for each run, distortion
D = E[-log p(x|z)] and rate R = E[KL(q(z|x) || p(z))] on the test set, so -ELBO = D + R; the
lines D + R = c join the models of equal ELBO, and a KL weight beta trades one for the other
(the beta-VAE objective D + beta R).
"""

import csv
import dataclasses
import math
import pathlib

import numpy as np

from keras_vae import latent_history, plots
from keras_vae.latent_history import LatentHistory  # noqa: F401 - its old home
from keras_vae.errors import RunError

# Panels of the training figure: (title, [(history column, legend label, style)]). The
# ELBO panel shows -ELBO, so that every curve but the KL weight goes down as training works.
TRAINING, VALIDATION = "tab:blue", "tab:orange"  # one colour per split in every panel
CURVES = [
    ("-ELBO and loss (nats per example)", [("elbo", "-ELBO, training", "-", TRAINING),
                                           ("val_elbo", "-ELBO, validation", "-", VALIDATION),
                                           ("loss", "loss, training", ":", TRAINING),
                                           ("val_loss", "loss, validation", ":", VALIDATION)]),
    ("Reconstruction -log p(x|z) (nats)", [("reconstruction", "training", "-", TRAINING),
                                           ("val_reconstruction", "validation", "-",
                                            VALIDATION)]),
    ("KL(q(z|x) || p(z)) (nats)", [("kl", "training", "-", TRAINING),
                                   ("val_kl", "validation", "-", VALIDATION)]),
    ("KL weight (beta)", [("kl_weight", "KL weight", "-", "tab:green")]),
]
KL_PANEL = CURVES[2][0]  # with a hierarchy, also each layer's KL (history.csv's kl_z1, ...)
LAYER_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))  # one per latent layer, cycled
NEGATED = ("elbo", "val_elbo")  # drawn as -ELBO
COLLAPSE_TITLE = "KL per latent dimension; ~0 nats: collapsed"
ACTIVE_TITLE = "Active units: Var_x(E_q[z_i]) > 0.01"


def read_csv_columns(path):
    """{column: float array} of a CSV with a header row; RunError naming the file and the
    fix when it is missing or holds something other than numbers."""
    path = pathlib.Path(path)
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist: the run has no per-epoch record (kvae fit "
                       f"writes it).") from None
    if not rows:
        raise RunError(f"{path} holds no epoch yet; plot it after the first epoch.")
    try:
        return {name: np.array([float(row[name]) for row in rows]) for name in rows[0]}
    except (TypeError, ValueError) as error:
        raise RunError(f"{path} holds a value that is not a number ({error}); restore the "
                       f"file or train the run again.") from None


def read_latent_history(path):
    """The ``latent_history.LatentHistory`` in ``path``, or None when the run has none."""
    if not pathlib.Path(path).exists():
        return None
    return latent_history.from_columns(read_csv_columns(path), path)


def training_figure(history, latent_history=None, title="Training", kl_weight=None):
    """Curves of ``history`` ({column: values}, history.csv) per epoch, and of
    ``latent_history`` when given; ``kl_weight``, the run's constant KL weight, is drawn when
    history has no ``kl_weight`` column (no warm-up). Returns (figure, plotted): plotted maps
    each panel's title to {legend label: (x, y)} as drawn, with x the epoch number counted
    from 1."""
    figure = plots.new_figure(1500, 860)
    grid = figure.add_gridspec(2, 3, left=0.05, right=0.97, top=0.9, bottom=0.07,
                               hspace=0.35, wspace=0.25)
    figure.suptitle(title, fontsize=13)
    plotted = {}
    epochs = history["epoch"] + 1
    for index, (panel, curves) in enumerate(CURVES):
        axes = figure.add_subplot(grid[index // 3, index % 3])
        plotted[panel] = {}
        for column, label, style, colour in curves:
            if column in history:
                values = -history[column] if column in NEGATED else history[column]
                axes.plot(epochs, values, style, color=colour, label=label)
                plotted[panel][label] = (epochs, values)
        if panel == KL_PANEL:
            plotted[panel].update(_layer_kl_curves(axes, history, epochs))
        if column == "kl_weight" and column not in history and kl_weight is not None:
            values = np.full(len(epochs), float(kl_weight))
            axes.plot(epochs, values, "-", color="tab:green", label="constant: no warm-up")
            plotted[panel]["constant: no warm-up"] = (epochs, values)
        _finish(axes, panel, plotted[panel], "no warm-up: the KL weight was constant\n"
                "(config.json gives its value)" if panel.startswith("KL weight")
                else "history.csv has none of these columns")
        if "val_elbo" not in history and index == 0:
            axes.text(0.98, 0.98, "no validation split", transform=axes.transAxes,
                      ha="right", va="top", fontsize=9, color="0.4")
    collapse = figure.add_subplot(grid[1, 1])
    units = figure.add_subplot(grid[1, 2])
    if latent_history is None:
        for axes in (collapse, units):
            _note(axes, "latent_history.csv is absent:\nthis run recorded no KL per dimension\n"
                        "(runs trained with the LatentMonitor\ncallback record it)")
        collapse.set_title(COLLAPSE_TITLE, fontsize=11)
        units.set_title(ACTIVE_TITLE, fontsize=11)
    else:
        plotted.update(_latent_panels(collapse, units, latent_history))
    return figure, plotted


def layer_kl_columns(history):
    """{layer name: history column} of a hierarchy's per-layer KL (``kl_z1``, ... as
    ``ELBOModel`` logs them), in file order; {} for a model with one layer."""
    return {column[len("kl_"):]: column for column in history
            if column.startswith("kl_") and column != "kl_weight"}


def _layer_kl_curves(axes, history, epochs):
    """Each layer's KL, training and validation, in the KL panel: a line style per layer."""
    curves = {}
    for index, (layer, column) in enumerate(layer_kl_columns(history).items()):
        style = LAYER_STYLES[index % len(LAYER_STYLES)]
        for split, prefix, colour in (("training", "", TRAINING),
                                      ("validation", "val_", VALIDATION)):
            if prefix + column in history:
                label = f"{layer}, {split}"
                axes.plot(epochs, history[prefix + column], linestyle=style, color=colour,
                          label=label)
                curves[label] = (epochs, history[prefix + column])
    return curves


def _latent_panels(collapse, units, latent):
    """A heat map of KL per dimension (rows: dimensions, layer by layer, the most informative
    of each layer at its top) against epochs, and the active units per epoch (per layer for a
    hierarchy)."""
    from matplotlib.ticker import MaxNLocator

    order, labels, plotted_kl = [], [], {}
    epochs = latent.epochs + 1
    for layer, (start, size, _) in latent.layers.items():
        within = np.argsort(-latent.kl[-1, start:start + size], kind="stable")
        for i in within:
            label = str(i) if layer is None else f"{layer} {i}"
            order.append(start + i)
            labels.append(label)
            plotted_kl[label] = (epochs, latent.kl[:, start + i])
    image = collapse.imshow(latent.kl[:, order].T, aspect="auto", cmap="viridis",
                            interpolation="nearest", origin="upper",
                            extent=[epochs[0] - 0.5, epochs[-1] + 0.5, len(order) - 0.5, -0.5])
    collapse.figure.colorbar(image, ax=collapse, label="KL (nats)")
    collapse.set_yticks(range(len(order)), labels,
                        fontsize=max(4, min(9, 400 // max(1, len(order)))))
    for start, _, _ in list(latent.layers.values())[1:]:  # a line between two layers
        collapse.axhline(start - 0.5, color="white", linewidth=1.5)
    collapse.set_xlabel("epoch")
    collapse.set_ylabel("latent dimension (by final KL)" if None in latent.layers
                        else "layer and dimension (by final KL)")
    collapse.set_title(COLLAPSE_TITLE, fontsize=11)
    plotted_units = {}
    for index, (layer, (_, size, active)) in enumerate(latent.layers.items()):
        label = "active units" if layer is None else f"{layer} (of {size})"
        units.plot(epochs, active, marker="o", markersize=3, label=label,
                   linestyle="-" if layer is None else LAYER_STYLES[index % len(LAYER_STYLES)])
        plotted_units[label] = (epochs, active)
    largest = max(size for _, size, _ in latent.layers.values())
    units.set_ylim(0, largest + 0.5)
    units.set_xlabel("epoch")
    units.set_ylabel(f"active units (of {largest})" if None in latent.layers
                     else "active units per layer")
    if None not in latent.layers:
        units.legend(fontsize=9)
    units.set_title(ACTIVE_TITLE, fontsize=11)
    units.grid(alpha=0.3)
    for axes in (collapse, units):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return {COLLAPSE_TITLE: plotted_kl, ACTIVE_TITLE: plotted_units}


def _finish(axes, title, curves, absent):
    from matplotlib.ticker import MaxNLocator

    axes.set_title(title, fontsize=11)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if curves:
        axes.legend(fontsize=9)
        axes.grid(alpha=0.3)
    else:
        _note(axes, absent)


def _note(axes, text):
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center",
              fontsize=10, color="0.3")
    axes.set_xticks([])
    axes.set_yticks([])


@dataclasses.dataclass
class RatePoint:
    """One run on the rate-distortion plane: ``rate`` R and ``distortion`` D in nats per
    example, its ``kl_weight`` (None when unknown) and the ``name`` it is labelled with."""

    name: str
    rate: float
    distortion: float
    kl_weight: float | None = None

    @property
    def label(self):
        return self.name if self.kl_weight is None else f"{self.name} (beta={self.kl_weight:g})"


def elbo_levels(points, num=6):
    """Round values c of -ELBO = D + R for the iso-lines: ``num`` evenly spaced levels that
    span the points' -ELBO with a margin."""
    totals = [point.rate + point.distortion for point in points]
    low, high = min(totals), max(totals)
    margin = max(0.25 * (high - low), 0.1 * high, 1.0)
    step = 10 ** math.floor(math.log10((high - low + 2 * margin) / num))
    step *= next(k for k in (1, 2, 5, 10) if (high - low + 2 * margin) / (k * step) <= num)
    start = math.floor((low - margin) / step) * step
    return [start + k * step for k in range(num + 1) if start + k * step > 0]


def rate_distortion_figure(points):
    """Rate (y) against distortion (x) of ``points`` (``RatePoint``), each labelled, with the
    iso-lines D + R = c of ``elbo_levels``. Returns (figure, levels)."""
    figure = plots.new_figure(900, 720)
    axes = figure.add_axes([0.1, 0.09, 0.85, 0.82])
    levels = elbo_levels(points)
    for level in levels:
        axes.plot([0, level], [level, 0], color="0.75", linewidth=0.8, zorder=1)
    distortions = np.array([point.distortion for point in points])
    rates = np.array([point.rate for point in points])
    colours = plots.class_colours(len(points))
    for colour, point in zip(colours, points):
        axes.scatter([point.distortion], [point.rate], s=40, color=colour, zorder=3,
                     label=f"{point.label}: D {point.distortion:.2f} + R {point.rate:.2f} = "
                           f"{point.rate + point.distortion:.2f}")
        axes.annotate(point.label, (point.distortion, point.rate), textcoords="offset points",
                      xytext=(6, 6), fontsize=9)
    x_high, y_high = distortions.max() * 1.3 + 1, rates.max() * 1.6 + 1
    axes.set_xlim(0, x_high)
    axes.set_ylim(0, y_high)
    for level in levels:  # each iso-line labelled where it leaves the plot, top or right
        x, y = (level - y_high, y_high) if level - y_high < x_high else (x_high,
                                                                          level - x_high)
        if 0 <= x <= x_high and 0 <= y <= y_high:
            axes.annotate(f"{level:g}", (x, y), textcoords="offset points", xytext=(2, 2),
                          fontsize=8, color="0.45", annotation_clip=False)
    axes.set_xlabel("distortion D = -log p(x|z), nats per example (test set)")
    axes.set_ylabel("rate R = KL(q(z|x) || p(z)), nats per example")
    axes.set_title("Rate against distortion; grey lines: equal -ELBO = D + R (value at the "
                   "line's end)", fontsize=11, pad=16)
    axes.legend(fontsize=9, loc="lower left")
    axes.grid(alpha=0.2)
    return figure, levels
