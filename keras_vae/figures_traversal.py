"""Latent traversals (``kvae traverse``): what each latent dimension encodes.

For a test image x and its posterior mean m = E_q[z|x], row r of the picture decodes, for one
dimension i_r, the points

    z = m  with  z_i = mu_i + t sigma_i,   t = -span .. span in ``steps`` even steps,

where mu_i and sigma_i are the prior's marginal mean and standard deviation (0 and 1 for the
standard Normal prior): one coordinate swept over the prior's range, the others held. For a
layer z_l of a hierarchy, m is the layer's posterior mean (``latent_diagnostics``) and each z
is decoded with the layers below at the means of p(z_(i-1) | z_i) (``decode_layer``), the
generative path from z_l to x, so a row shows what that unit of z_l means to the model. The
rows are the most active dimensions (highest Var_x(E_q[z_i]) over the test images, the
activity of ``evaluation.active_units``), each labelled with its activity and its KL, the
nats per image it carries. A dimension the decoder ignores (a collapsed one, KL ~ 0) gives a
row of identical images. Model protocol only (``figures_latent``).
"""

import dataclasses

import numpy as np

from keras_vae import figures_latent, plots
from keras_vae.errors import ConfigError

CELL_SCALE = 2  # screen pixels per image pixel: crisp digits


@dataclasses.dataclass
class Traversal:
    """``images`` [rows, steps, *image_shape], decoded means; ``dimensions`` [rows] the swept
    dimension of each row; ``offsets`` [steps] the values of t; ``values`` [rows, steps] the
    swept z_i; ``activity`` and ``kl_per_dimension`` [rows] of those dimensions (nats);
    ``active`` [rows] whether each is an active unit; ``start`` [D] the posterior mean held
    fixed; ``layer`` its name; ``first_layer`` the model's layer next to the data."""

    images: np.ndarray
    dimensions: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    activity: np.ndarray
    kl_per_dimension: np.ndarray
    active: np.ndarray
    start: np.ndarray
    layer: str
    image_index: int
    first_layer: str = ""


def traversal(model, images, image_index=0, num_dimensions=8, steps=9, span=3.0, layer=None,
              seed=0):
    """The ``Traversal`` of test image ``image_index`` along the ``num_dimensions`` most active
    dimensions of ``layer`` (activity measured over all ``images``)."""
    if not 0 <= image_index < len(images):
        raise ConfigError(f"--image-index {image_index} is outside the {len(images)} test "
                          f"images; choose 0 .. {len(images) - 1}.")
    if steps < 2 or span <= 0:
        raise ConfigError(f"A traversal needs at least 2 steps and a positive span; received "
                          f"steps={steps}, span={span}.")
    summary = figures_latent.summarise_latents(model, images, layer, seed)
    dimensions = summary.most_active(num_dimensions)
    start = summary.means[image_index]
    offsets = np.linspace(-span, span, steps)
    mean, scale = figures_latent.prior_moments(model, len(start), summary.layer)
    values = mean[dimensions, None] + offsets[None, :] * scale[dimensions, None]
    z = np.tile(start, (len(dimensions), steps, 1))
    z[np.arange(len(dimensions)), :, dimensions] = values
    decoded = figures_latent.decoded_means(model, z.reshape(-1, len(start)), summary.layer)
    return Traversal(decoded.reshape(len(dimensions), steps, *decoded.shape[1:]), dimensions,
                     offsets, values, summary.activity[dimensions],
                     summary.kl_per_dimension[dimensions], summary.active[dimensions], start,
                     summary.layer, image_index, next(iter(model.latent_sizes)))


def traversal_figure(result):
    """The grid of ``result``, one row per dimension labelled with its number, KL and
    activity, one column per step labelled with t; returns the matplotlib figure."""
    rows, steps = result.images.shape[:2]
    height, width = result.images.shape[2:4]
    canvas = plots.grid_array(result.images.reshape(rows * steps, *result.images.shape[2:]),
                              num_columns=steps)
    left, right, top, bottom = 300, 30, 70, 80  # room for the labels, pixels
    figure = plots.new_figure(left + CELL_SCALE * canvas.shape[1] + right,
                              top + CELL_SCALE * canvas.shape[0] + bottom)
    size_x, size_y = figure.bbox.width, figure.bbox.height
    axes = figure.add_axes([left / size_x, bottom / size_y, CELL_SCALE * canvas.shape[1] /
                            size_x, CELL_SCALE * canvas.shape[0] / size_y])
    plots.show_grid(axes, canvas)
    # cell centres in canvas pixels: padding 2, then cells of the image's size plus padding
    axes.set_yticks(2 + np.arange(rows) * (height + 2) + height / 2 - 0.5,
                    [_row_label(result, row) for row in range(rows)])
    axes.set_xticks(2 + np.arange(steps) * (width + 2) + width / 2 - 0.5,
                    [f"{t:+.1f}" for t in result.offsets])
    below = (f"\nlayers below {result.layer}: means of their conditionals"
             if result.layer != result.first_layer else "")
    axes.set_xlabel(f"t: {result.layer}_i = prior mean + t x prior std\nother dimensions: "
                    f"test image {result.image_index}'s posterior mean{below}")
    axes.set_title(f"Latent traversals: the {rows} most active\ndimensions of {result.layer}, "
                   f"one per row", fontsize=11)
    return figure


def _row_label(result, row):
    inactive = "" if result.active[row] else ", inactive"
    return (f"{result.layer} {result.dimensions[row]}: KL {result.kl_per_dimension[row]:.2f} "
            f"nats, Var {result.activity[row]:.2f}{inactive}")
