"""Keras 3 layers whose outputs are ``tensorflow_probability`` distributions.

- ``GaussianEncoder`` (``encoder.py``): x -> q(z|x) = Independent(Normal(loc, scale), 1), a
  diagonal Normal posterior over ``latent_dim`` latent variables (Kingma & Welling 2014).
- ``ImageDecoder`` (``decoder.py``): the base of every likelihood head z -> p(x|z), and the
  facts a head owns (its data check, data preparation, export outputs and their meaning).
- ``BernoulliDecoder`` (``bernoulli.py``): p(x|z) = Independent(Bernoulli(logits), rank of
  the image), for binarised data in [0, 1].
- ``NormalDecoder`` (``normal.py``) and ``LaplaceDecoder`` (``laplace.py``): a location and
  a scale per pixel (``location_scale.py``), the scale fixed, learned once per pixel, or
  predicted per example; any real data.
- ``ContinuousBernoulliDecoder`` (``continuous_bernoulli.py``): the continuous Bernoulli
  density (Loaiza-Ganem & Cunningham 2019), for grey levels in [0, 1].
- ``LogisticDecoder`` (``logistic.py``), ``LogisticMixtureDecoder``
  (``logistic_mixture.py``) and ``CategoricalDecoder`` (``categorical.py``): masses over
  integer levels 0 .. L - 1 (``levels.py``; 8-bit pixels as they are): the discretised
  logistic and a mixture of them (PixelCNN++), and a categorical with a logit per level.

Each layer is a body network followed by a small head that produces the distribution's
parameters (``base.py``). The likelihood heads are registered by name in
``keras_vae/likelihoods.py``; a new likelihood is one module with an ``ImageDecoder``
subclass plus one ``likelihoods.register`` call.

These are subclassed layers: they can be called on tensors and used inside subclassed models,
but not as nodes of a functional model (Keras 3 functional models carry tensors only).
"""

from keras_vae.config import check_latent_dim  # noqa: F401 - kept importable from here
from keras_vae.layers.base import (MIN_SCALE, DistributionLayer,  # noqa: F401
                                   inverse_softplus, positive_scale, stable_softplus)
from keras_vae.layers.bernoulli import BernoulliDecoder, LogitBernoulli  # noqa: F401
from keras_vae.layers.categorical import CategoricalDecoder  # noqa: F401
from keras_vae.layers.continuous_bernoulli import ContinuousBernoulliDecoder  # noqa: F401
from keras_vae.layers.decoder import ImageDecoder  # noqa: F401
from keras_vae.layers.encoder import GaussianEncoder  # noqa: F401
from keras_vae.layers.laplace import LaplaceDecoder  # noqa: F401
from keras_vae.layers.logistic import LogisticDecoder  # noqa: F401
from keras_vae.layers.logistic_mixture import LogisticMixtureDecoder  # noqa: F401
from keras_vae.layers.normal import NORMAL_SCALES, NormalDecoder, check_scale  # noqa: F401
