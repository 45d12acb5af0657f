"""The AE and the VAE: Keras models with hand-written ``train_step``/``test_step``.

Both hold an ``encoder`` and a ``decoder`` (functional models from ``architecture``) and
compute their losses under ``tf.GradientTape``. Losses are per image (summed over
pixels), then averaged over the replica's share of the batch and divided by the
number of replicas: the optimizer sums gradients over replicas, so the update is the
gradient of the mean over the global batch whatever the number of devices.

The VAE samples ``z = z_mean + exp(z_log_var / 2) * eps`` with ``eps`` drawn
statelessly from (seed, replica, optimizer step): no ``Lambda`` layer, no random state
to save, and a resumed run draws the same noise as an uninterrupted one.

``fused_loss=True`` (``config.speed.fused_loss``) computes the reconstruction loss
as ``speed.fused_reconstruction_terms``: the same loss, summed in another order.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from zspace.networks.architecture import SIGMOID
from zspace.networks.speed import fused_reconstruction_terms

# Clip the sigmoid output away from 0 and 1 before the logarithms (Keras uses 1e-7).
EPSILON = 1e-7
# Keeps the validation noise apart from the training noise of the same step.
VALIDATION_SALT = 7919


def reconstruction_loss(images: tf.Tensor, reconstruction: tf.Tensor,
                        kind: str = "bce", logits: tf.Tensor | None = None
                        ) -> tf.Tensor:
    """Per-image reconstruction loss: channel mean, summed over the pixels.

    This is the scale of the blog's numbers (about 5,000 for BCE at 96 px), so that
    its ``kl_factor`` of 5 gives a KL share of a few per cent.

    Args:
        images: (n, h, w, c) float32 targets in [0, 1].
        reconstruction: (n, h, w, c) float32 decoder output in [0, 1].
        kind: ``bce`` (binary cross-entropy) or ``mse`` (squared error).
        logits: The pre-sigmoid decoder output, if known: BCE from logits needs no
            clipping and half the arithmetic.

    Returns:
        (n,) float32 losses.
    """
    if kind == "bce" and logits is not None:
        pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    elif kind == "bce":
        p = tf.clip_by_value(reconstruction, EPSILON, 1.0 - EPSILON)
        pixel = -(images * tf.math.log(p) + (1.0 - images) * tf.math.log(1.0 - p))
    else:
        pixel = tf.square(images - reconstruction)
    return tf.reduce_sum(tf.reduce_mean(pixel, axis=-1), axis=(1, 2))


def kl_loss(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """KL divergence of N(z_mean, exp(z_log_var)) from N(0, I), summed over z.

    Returns:
        (n,) float32 divergences.
    """
    terms = 1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var)
    return -0.5 * tf.reduce_sum(terms, axis=-1)


class _Autoencoder(keras.Model):
    """What the AE and the VAE share: sub-models, loss kind, metrics, config."""

    metric_names: tuple[str, ...] = ()

    def __init__(self, encoder: keras.Model, decoder: keras.Model,
                 loss: str = "bce", seed: int = 1, fused_loss: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.loss_kind = loss
        self.seed = int(seed)
        self.fused_loss = bool(fused_loss)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in self.metric_names}
        # The sub-models are functional and built already. Marking the whole model
        # built lets it save (and its optimizer state load) before any call.
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def metrics(self):
        # Listing the trackers lets fit() reset them at every epoch.
        return list(self.trackers.values())

    def train_step(self, data):
        images = _images(data)
        with tf.GradientTape() as tape:
            losses = self._compute_losses(images, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(losses["total_loss"] / replicas)
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights,
                                           strict=True))
        return self._update_metrics(losses)

    def test_step(self, data):
        return self._update_metrics(self._compute_losses(_images(data), training=False))

    def _update_metrics(self, losses):
        for name, tracker in self.trackers.items():
            tracker.update_state(losses[name])
        return step_logs({name: tracker.result()
                          for name, tracker in self.trackers.items()})

    def _decode(self, z, training):
        """Decoder output (n, h, w, c) and its logits (None for a foreign decoder)."""
        layers = self.decoder.layers
        if layers[-1].name != SIGMOID or len(self.decoder.outputs) != 1:
            return self.decoder(z, training=training), None
        # The builder's decoders are chains: run all but the sigmoid by hand.
        logits = z
        for layer in layers[1:-1]:
            logits = layer(logits, training=training)
        return tf.sigmoid(logits), logits

    def _reconstruction_terms(self, images, z, training):
        reconstruction, logits = self._decode(z, training)
        # BCE from logits only: a decoder of another shape takes the plain loss.
        if self.fused_loss and (self.loss_kind != "bce" or logits is not None):
            return fused_reconstruction_terms(images, reconstruction, logits,
                                              self.loss_kind)
        # Batch means of per-image values; (n,) -> ()
        return {
            "reconstruction_loss": tf.reduce_mean(reconstruction_loss(
                images, reconstruction, self.loss_kind, logits)),
            "mse": tf.reduce_mean(tf.square(images - reconstruction)),
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "loss": self.loss_kind,
            "seed": self.seed,
            "fused_loss": self.fused_loss,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("encoder", "decoder"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)


@keras.saving.register_keras_serializable(package="zspace")
class AE(_Autoencoder):
    """A plain autoencoder: ``images -> z -> images``.

    Args:
        encoder: Images (n, h, w, c) in [0, 1] to ``z`` (n, z_dim).
        decoder: ``z`` (n, z_dim) to images (n, h, w, c) in [0, 1].
        loss: ``bce`` or ``mse``.
        seed: Unused by the AE; kept so both models share one config.
        fused_loss: The reconstruction loss as one flat reduction with a
            hand-written gradient (``config.speed.fused_loss``).
    """

    metric_names = ("total_loss", "reconstruction_loss", "mse")

    def call(self, images, training=False):
        return self.decoder(self.encoder(images, training=training),
                            training=training)

    def _compute_losses(self, images, training):
        z = self.encoder(images, training=training)
        terms = self._reconstruction_terms(images, z, training)
        return {**terms, "total_loss": terms["reconstruction_loss"]}


@keras.saving.register_keras_serializable(package="zspace")
class VAE(_Autoencoder):
    """A variational autoencoder with a weighted KL term.

    ``total_loss = reconstruction_loss + kl_factor * kl_loss``; ``kl_share`` is the
    KL part of the total (``kl_factor * kl_loss / total_loss``), batch-averaged.

    Args:
        encoder: Images (n, h, w, c) in [0, 1] to ``[z_mean, z_log_var]``.
        decoder: ``z`` (n, z_dim) to images (n, h, w, c) in [0, 1].
        loss: ``bce`` or ``mse``.
        kl_factor: Weight of the KL loss (the blog's ``fact``).
        seed: Seed of the sampling noise.
        fused_loss: The reconstruction loss as one flat reduction with a
            hand-written gradient (``config.speed.fused_loss``).
    """

    metric_names = ("total_loss", "reconstruction_loss", "kl_loss", "kl_share", "mse")

    def __init__(self, encoder, decoder, loss="bce", kl_factor=5.0, seed=1,
                 fused_loss=False, **kwargs):
        super().__init__(encoder, decoder, loss=loss, seed=seed,
                         fused_loss=fused_loss, **kwargs)
        self.kl_factor = float(kl_factor)

    def call(self, images, training=False):
        """Reconstruct from ``z_mean``, without sampling (deterministic)."""
        z_mean, _ = self.encoder(images, training=training)
        return self.decoder(z_mean, training=training)

    def sample(self, z_mean, z_log_var, salt=0):
        """Reparameterised ``z = z_mean + exp(z_log_var / 2) * eps``; (n, z_dim)."""
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        step = tf.cast(self.optimizer.iterations, tf.int32)
        seed = tf.stack([tf.cast(self.seed * 1009 + salt, tf.int32)
                         + tf.cast(replica, tf.int32) * 65537, step])
        eps = tf.random.stateless_normal(tf.shape(z_mean), seed=seed)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def _compute_losses(self, images, training):
        z_mean, z_log_var = self.encoder(images, training=training)
        z = self.sample(z_mean, z_log_var, salt=0 if training else VALIDATION_SALT)
        terms = self._reconstruction_terms(images, z, training)
        kl = tf.reduce_mean(kl_loss(z_mean, z_log_var))
        total = terms["reconstruction_loss"] + self.kl_factor * kl
        return {
            **terms,
            "kl_loss": kl,
            "total_loss": total,
            "kl_share": self.kl_factor * kl / total,
        }

    def get_config(self):
        return {**super().get_config(), "kl_factor": self.kl_factor}


def step_logs(logs: dict) -> dict:
    """What a train or test step returns: its metric values, as Keras expects.

    Under ``MultiWorkerMirroredStrategy`` Keras 3's ``fit`` reduces the step's
    outputs over axis 0 and fails on scalars ("Invalid reduction dimension 0",
    tensorflow/tensorflow#72388). There each value gets a length-1 axis; ``fit``
    still reports the epoch from the metrics themselves.
    """
    if isinstance(tf.distribute.get_strategy(),
                  tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}
    return logs


def _images(data):
    # fit() hands over whatever the dataset yields: images alone, or (images, ...).
    return data[0] if isinstance(data, tuple | list) else data
