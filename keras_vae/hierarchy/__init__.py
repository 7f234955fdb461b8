"""Hierarchical VAEs: several layers of Gaussian latents (Burda et al. 2016; the Ladder VAE of
Sønderby et al. 2016; NVAE's residual posteriors, Vahdat & Kautz 2020).

``model``: ``HierarchicalVAE``, the Keras model; ``passes``: the inference and generative passes
through the layers (the formulas); ``steps``: ``GaussianStep`` and the two ways to merge
bottom-up evidence with a top-down prior.
"""

from keras_vae.hierarchy.model import HierarchicalVAE
from keras_vae.hierarchy.steps import GaussianStep

__all__ = ["GaussianStep", "HierarchicalVAE"]
