"""Training objectives on the network's outputs ``{"logits", "deep_feature", "embedding"}``.

Each objective returns *per-example* loss terms; the trainer averages them over the
global batch (``tf.nn.compute_average_loss``), so every ``L`` below is a batch *mean*
(the per-example terms summed and divided by the global batch size ``m``).
"""

from __future__ import annotations

from itemrec.train.keras_api import tf


class Objective(tf.Module):
    """Base class: ``terms`` (per-example, named), their ``total``, and a post-step ``update``."""

    #: True when batches must hold several images of each class (P x K sampling).
    needs_class_balanced_batches = False
    #: The names of the per-example terms that ``terms`` returns.
    term_names: tuple = ()

    def terms(self, labels, outputs) -> dict:
        raise NotImplementedError

    def total(self, terms: dict):
        raise NotImplementedError

    def update(self, labels, outputs) -> None:
        """Non-gradient state updates after the optimiser step (none by default)."""


class CenterLoss(Objective):
    """Softmax cross-entropy plus center loss (Wen et al., ECCV 2016).

    Per example ``i`` with deep feature ``x_i`` and label ``y_i``::

        softmax_loss_i = -log softmax(logits_i)[y_i]
        center_loss_i  = 1/2 * ||x_i - c_{y_i}||^2
        loss           = 1/m * sum_i (softmax_loss_i + lambda * center_loss_i)

    i.e. the paper's ``L = L_S + lambda * L_C`` with ``L_C = 1/2 sum_i ||x_i - c_{y_i}||^2``
    divided by the batch size (Keras' mean reduction, as in the seed study whose
    lambda = 0.001 this default reproduces).

    The centers ``c_j`` are not trained by gradients; after each step they move by the
    paper's rule, over the *global* batch (sums and counts are all-reduced across
    replicas first, so N replicas update exactly like one)::

        delta_c_j = sum_i [y_i = j] (c_j - x_i) / (1 + sum_i [y_i = j])
        c_j      <- c_j - alpha * delta_c_j
    """

    term_names = ("softmax_loss", "center_loss")

    def __init__(self, num_classes: int, feature_size: int, lam: float = 1e-3, alpha: float = 0.5):
        super().__init__(name="center_loss")
        self.num_classes = int(num_classes)
        self.lam = float(lam)
        self.alpha = float(alpha)
        # Every replica computes the same all-reduced update, so the first one's is kept.
        self.centers = tf.Variable(
            tf.zeros([num_classes, feature_size], tf.float32),
            trainable=False,
            name="centers",
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def terms(self, labels, outputs) -> dict:
        labels = _flat_labels(labels)
        logits = tf.cast(outputs["logits"], tf.float32)
        features = tf.cast(outputs["deep_feature"], tf.float32)
        softmax = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        centers = tf.gather(tf.convert_to_tensor(self.centers), labels)
        center = 0.5 * tf.reduce_sum(tf.square(features - centers), axis=-1)
        return {"softmax_loss": softmax, "center_loss": center}

    def total(self, terms: dict):
        return terms["softmax_loss"] + self.lam * terms["center_loss"]

    def update(self, labels, outputs) -> None:
        labels = _flat_labels(labels)
        features = tf.stop_gradient(tf.cast(outputs["deep_feature"], tf.float32))
        differences = tf.gather(tf.convert_to_tensor(self.centers), labels) - features
        sums = tf.math.unsorted_segment_sum(differences, labels, self.num_classes)
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(labels, tf.float32), labels, self.num_classes
        )
        context = tf.distribute.get_replica_context()
        if context is not None:
            sums, counts = context.all_reduce(tf.distribute.ReduceOp.SUM, [sums, counts])
        self.centers.assign_sub(self.alpha * sums / (1.0 + counts[:, None]))


class SoftmaxLoss(CenterLoss):
    """Plain softmax cross-entropy: ``CenterLoss`` with ``lambda = 0``.

    The centers are still updated (they cost nothing), so the center loss is reported
    and comparable to a center-loss run.
    """

    def __init__(self, num_classes: int, feature_size: int, alpha: float = 0.5, **_ignored):
        super().__init__(num_classes, feature_size, lam=0.0, alpha=alpha)


class TripletLoss(Objective):
    """Online batch-hard triplet loss (Hermans et al., 2017) on the L2-normalised embedding.

    With ``d(a, b) = ||e_a - e_b||_2``, for every anchor ``i`` in the (per-replica) batch::

        triplet_loss_i = max(0, margin + max_{p: y_p = y_i, p != i} d(i, p)
                                       - min_{n: y_n != y_i} d(i, n))
        loss           = 1/m * sum_i triplet_loss_i

    An anchor without a positive or a negative in the batch contributes 0; feed it
    P x K class-balanced batches (``train.data`` does). The classifier head is unused.
    """

    needs_class_balanced_batches = True
    term_names = ("triplet_loss",)

    def __init__(self, margin: float = 0.2, **_ignored):
        super().__init__(name="triplet_loss")
        self.margin = float(margin)

    def terms(self, labels, outputs) -> dict:
        labels = _flat_labels(labels)
        embeddings = tf.cast(outputs["embedding"], tf.float32)
        squared = tf.maximum(2.0 - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True), 0.0)
        distances = tf.sqrt(squared + 1e-12)
        same = tf.equal(labels[:, None], labels[None, :])
        not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
        positive = tf.logical_and(same, not_self)
        negative = tf.logical_not(same)
        hardest_positive = tf.reduce_max(tf.where(positive, distances, 0.0), axis=1)
        hardest_negative = tf.reduce_min(tf.where(negative, distances, 4.0), axis=1)
        valid = tf.logical_and(tf.reduce_any(positive, axis=1), tf.reduce_any(negative, axis=1))
        loss = tf.nn.relu(self.margin + hardest_positive - hardest_negative)
        return {"triplet_loss": tf.where(valid, loss, 0.0)}

    def total(self, terms: dict):
        return terms["triplet_loss"]


OBJECTIVES = {"center": CenterLoss, "softmax": SoftmaxLoss, "triplet": TripletLoss}


def make_objective(
    name: str,
    num_classes: int,
    feature_size: int,
    lam: float = 1e-3,
    alpha: float = 0.5,
    margin: float = 0.2,
) -> Objective:
    """Build the objective called ``name`` (one of :data:`OBJECTIVES`)."""
    if name == "center":
        return CenterLoss(num_classes, feature_size, lam=lam, alpha=alpha)
    if name == "softmax":
        return SoftmaxLoss(num_classes, feature_size, alpha=alpha)
    if name == "triplet":
        return TripletLoss(margin=margin)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(OBJECTIVES)}")


def _flat_labels(labels):
    return tf.reshape(tf.cast(labels, tf.int32), [-1])
