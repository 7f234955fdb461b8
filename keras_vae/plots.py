"""Pixels and PNG files: image grids (Pillow), matplotlib figures, and writing either as a PNG.

``image_grid`` turns images into one PIL image (Pillow only); ``grid_array`` is the same grid
as an array, for a matplotlib axes to show with labelled ticks. ``new_figure`` makes a
matplotlib ``Figure`` of an exact size in pixels on the Agg canvas (no display, no pyplot
state); matplotlib is imported there, not at module import, so ``kvae --help`` stays fast.
``save_png`` writes a PIL image or a figure (``figure_image``): encoded in memory, written to
a temporary file and renamed into place, creating missing folders. What a figure shows is
``figures*.py``'s.
"""

import io
import math
import pathlib

import numpy as np
from PIL import Image

from keras_vae.errors import ConfigError
from keras_vae.files import replace_atomically

DPI = 100  # figure sizes are given in pixels: inches = pixels / DPI


def grid_array(images, num_columns=None, padding=2):
    """Images [N, H, W, C] (or [N, H, W]) in [0, 1] -> one float array [rows * (H + padding)
    + padding, columns * (W + padding) + padding, C], ``num_columns`` per row (default
    square-ish), white (1.0) between cells and in unused cells."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    if channels not in (1, 3):
        raise ValueError(f"Images need 1 or 3 channels to be drawn; received {channels}.")
    num_columns = num_columns or math.ceil(math.sqrt(count))
    num_rows = math.ceil(count / num_columns)
    canvas = np.ones((num_rows * (height + padding) + padding,
                      num_columns * (width + padding) + padding, channels), np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, num_columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top:top + height, left:left + width] = image
    return canvas


def image_grid(images, num_columns=None, padding=2, scale=2):
    """``grid_array`` as a PIL image, each pixel drawn ``scale`` times."""
    canvas = grid_array(images, num_columns, padding)
    pixels = (canvas * 255).round().astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if canvas.shape[-1] == 1 else pixels)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def show_grid(axes, canvas, **imshow_options):
    """Draws a ``grid_array`` canvas on a matplotlib axes (grey levels for one channel)."""
    if canvas.shape[-1] == 1:
        axes.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0,
                    interpolation="nearest", **imshow_options)
    else:
        axes.imshow(canvas, interpolation="nearest", **imshow_options)


def new_figure(width, height):
    """A matplotlib ``Figure`` of ``width`` x ``height`` pixels on the Agg canvas: drawn in
    memory, never on a display, and independent of pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def class_colours(num):
    """``num`` distinct colours for classes: Tableau 10 up to ten classes (MNIST's digits),
    else evenly spaced along the viridis colour map."""
    from matplotlib import colormaps

    if num <= 10:
        return [colormaps["tab10"](k) for k in range(num)]
    return [colormaps["viridis"](k / (num - 1)) for k in range(num)]


def figure_image(figure):
    """A matplotlib figure as a PIL image of its exact size in pixels, reduced to 256 colours:
    a third of the bytes of full colour, with no difference to see in a plot."""
    rendered = io.BytesIO()
    figure.savefig(rendered, format="png", dpi=DPI)
    rendered.seek(0)
    with Image.open(rendered) as image:
        return image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.NONE)


def save_png(picture, path):
    """Saves a PIL image or a matplotlib figure as PNG at ``path``, creating missing folders:
    encoded in memory first, then written to a temporary file beside ``path`` and renamed
    into place, so that ``path`` is the old file or the new one, never half of one. A figure
    keeps its exact size in pixels (no tight bounding box). ConfigError when ``path`` cannot
    be written."""
    path = pathlib.Path(path)
    if hasattr(picture, "savefig"):
        picture = figure_image(picture)
    encoded = io.BytesIO()
    picture.save(encoded, format="PNG", optimize=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda file: file.write(encoded.getvalue()), mode="wb")
    except FileExistsError as error:  # a file where a folder should be
        raise ConfigError(f"Cannot write {path}: {error.filename} is a file, not a folder; "
                          f"choose another path (--out).") from None
    except OSError as error:
        raise ConfigError(f"Cannot write {path}: {error.strerror or error}; choose another "
                          f"path (--out).") from None
    return path
