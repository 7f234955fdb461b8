"""Pixel drawing: arrays to PIL images (image grids, scatter plots), and PNG files.

Pure functions from arrays to PIL images (Pillow only, no plotting library), saved as PNG by
``save_png``, which creates missing folders and writes to a temporary file renamed into
place. What a figure shows (which images, which latent points) is ``figures.py``'s.
"""

import io
import math
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from keras_vae.errors import ConfigError
from keras_vae.files import replace_atomically

# Ten colours that stay distinct for the ten classes of MNIST-like data (Tableau 10).
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def image_grid(images, num_columns=None, padding=2, scale=2):
    """Images [N, H, W, C] in [0, 1] -> one PIL image, ``num_columns`` per row (default
    square-ish), ``padding`` white pixels between cells, each pixel drawn ``scale`` times."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim == 2:  # flat vectors (tabular data): no picture to draw
        raise ConfigError(f"The examples are vectors of {images.shape[1]} values, not images: "
                          f"they have no picture (kvae sample --out samples.csv writes sampled "
                          f"values; kvae latent-plot works).")
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
    pixels = (canvas * 255).round().astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def latent_scatter(points, labels=None, size=600, margin=30, radius=2):
    """A scatter plot of 2-D points coloured by integer label, with a legend, as a PIL image."""
    points = np.asarray(points, np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    pixels = margin + (points - low) / span * (size - 2 * margin)
    picture = Image.new("RGB", (size + 80, size), "white")
    draw = ImageDraw.Draw(picture)
    draw.rectangle([margin, margin, size - margin, size - margin], outline=(200, 200, 200))
    labels = np.zeros(len(points), int) if labels is None else np.asarray(labels, int)
    for (x, y), label in zip(pixels, labels):
        y = size - y  # the first coordinate grows to the right, the second upwards
        draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                     fill=PALETTE[label % len(PALETTE)])
    for row, label in enumerate(np.unique(labels)):
        top = margin + 18 * row
        draw.rectangle([size + 10, top, size + 20, top + 10], fill=PALETTE[label % len(PALETTE)])
        draw.text((size + 26, top - 1), str(label), fill="black")
    return picture


def save_png(picture, path):
    """Saves a PIL image as PNG at ``path``, creating missing folders: encoded in memory
    first, then written to a temporary file beside ``path`` and renamed into place, so that
    ``path`` is the old file or the new one, never half of one. ConfigError when ``path``
    cannot be written."""
    path = pathlib.Path(path)
    encoded = io.BytesIO()
    picture.save(encoded, format="PNG")
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
