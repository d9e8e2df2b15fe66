"""Training objectives on the network's outputs ``{"logits", "deep_feature", "embedding"}``.

Each objective returns *per-example* loss terms; the trainer averages them over the
global batch (``tf.nn.compute_average_loss``), so every ``L`` below is a batch *mean*
(the per-example terms summed and divided by the global batch size ``m``).
"""

from __future__ import annotations

import math

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

    def class_logits(self, outputs):
        """The per-class scores that training accuracy is measured on."""
        return outputs["logits"]

    def chance_loss(self, num_classes: int) -> float:
        """The loss of a model that has learnt nothing (every class equally likely).

        The collapse guard watches for the loss climbing back towards it.
        """
        raise NotImplementedError


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

    def chance_loss(self, num_classes: int) -> float:
        return math.log(num_classes)  # uniform softmax; the center term is 0 when collapsed


class SoftmaxLoss(CenterLoss):
    """Plain softmax cross-entropy: ``CenterLoss`` with ``lambda = 0``.

    The centers are still updated (they cost nothing), so the center loss is reported
    and comparable to a center-loss run.
    """

    def __init__(self, num_classes: int, feature_size: int, alpha: float = 0.5):
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

    def __init__(self, margin: float = 0.2):
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

    def chance_loss(self, num_classes: int) -> float:
        return self.margin  # every distance equal


class _MarginSoftmax(Objective):
    """Softmax over ``s * cos(theta_ij)`` between the embedding and learnt class weights, with a
    margin on the true class's logit (shared by ArcFace, CosFace and sub-center ArcFace).

    The class weights belong to the objective (as in pytorch-metric-learning), are trained
    with the network and checkpointed with it; the network's own ``logits`` head is unused.
    Every term is per example, so replicas need no extra synchronisation: the optimiser's
    all-reduce of the gradients makes N replicas step exactly like one.
    """

    def __init__(self, name, num_classes, feature_size, scale, margin, subcenters=1, seed=0):
        super().__init__(name=name)
        self.num_classes, self.scale, self.margin = int(num_classes), float(scale), float(margin)
        self.subcenters = int(subcenters)
        initial = tf.random.stateless_normal(
            [feature_size, num_classes * self.subcenters], seed=[int(seed), 15]
        )
        self.class_weights = tf.Variable(
            tf.math.l2_normalize(initial, axis=0), trainable=True, name="class_weights"
        )

    def cosines(self, outputs):
        """``cos(theta_ij)`` of every example and class (the best sub-center's)."""
        embeddings = tf.math.l2_normalize(tf.cast(outputs["embedding"], tf.float32), axis=1)
        weights = tf.math.l2_normalize(tf.convert_to_tensor(self.class_weights), axis=0)
        cosines = tf.clip_by_value(tf.matmul(embeddings, weights), -1.0, 1.0)
        if self.subcenters > 1:
            cosines = tf.reshape(cosines, [-1, self.num_classes, self.subcenters])
            cosines = tf.reduce_max(cosines, axis=-1)
        return cosines

    def target_logit(self, cosine):
        raise NotImplementedError

    def terms(self, labels, outputs) -> dict:
        labels = _flat_labels(labels)
        cosines = self.cosines(outputs)
        target = tf.one_hot(labels, self.num_classes, on_value=True, off_value=False)
        logits = self.scale * tf.where(target, self.target_logit(cosines), cosines)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return {self.term_names[0]: loss}

    def total(self, terms: dict):
        return terms[self.term_names[0]]

    def class_logits(self, outputs):
        return self.scale * self.cosines(outputs)

    def chance_loss(self, num_classes: int) -> float:
        target = self.scale * float(self.target_logit(tf.constant(0.0)))  # every cosine 0
        return math.log(math.exp(target) + num_classes - 1) - target


class ArcFaceLoss(_MarginSoftmax):
    """Additive angular margin loss, ArcFace (Deng et al., CVPR 2019).

    With ``e_i`` the L2-normalised embedding, ``W_j`` the L2-normalised weight of class
    ``j`` and ``cos(theta_ij) = e_i . W_j``::

        logit_ij = s * cos(theta_ij + m)   if j = y_i
                   s * cos(theta_ij)       otherwise
        loss     = 1/m_batch * sum_i -log softmax(logit_i)[y_i]

    Where ``theta + m > pi`` the target logit would grow again with the angle; there it
    is ``s * (cos(theta) - m * sin(m))`` instead (InsightFace's fallback), which keeps the
    loss monotonic in the angle.
    """

    term_names = ("arcface_loss",)

    def __init__(self, num_classes, feature_size, scale=30.0, margin=0.5, seed=0):
        super().__init__("arcface_loss", num_classes, feature_size, scale, margin, seed=seed)

    def target_logit(self, cosine):
        return _additive_angular_margin(cosine, self.margin)


class SubCenterArcFaceLoss(_MarginSoftmax):
    """Sub-center ArcFace (Deng et al., ECCV 2020): ``K`` weights per class.

    ``cos(theta_ij) = max_k e_i . W_jk``, then ArcFace's logits and loss as above. A class's
    odd images (a noisy label, another packaging) can gather at their own sub-center
    instead of pulling the whole class apart.
    """

    term_names = ("subcenter_loss",)

    def __init__(self, num_classes, feature_size, scale=30.0, margin=0.5, subcenters=3, seed=0):
        super().__init__(
            "subcenter_loss", num_classes, feature_size, scale, margin, subcenters, seed
        )

    def target_logit(self, cosine):
        return _additive_angular_margin(cosine, self.margin)


class CosFaceLoss(_MarginSoftmax):
    """Large margin cosine loss, CosFace (Wang et al., CVPR 2018).

    With ``cos(theta_ij) = e_i . W_j`` as for ArcFace::

        logit_ij = s * (cos(theta_ij) - m)   if j = y_i
                   s * cos(theta_ij)         otherwise
        loss     = 1/m_batch * sum_i -log softmax(logit_i)[y_i]
    """

    term_names = ("cosface_loss",)

    def __init__(self, num_classes, feature_size, scale=30.0, margin=0.35, seed=0):
        super().__init__("cosface_loss", num_classes, feature_size, scale, margin, seed=seed)

    def target_logit(self, cosine):
        return cosine - self.margin


OBJECTIVES = {
    "center": CenterLoss,
    "softmax": SoftmaxLoss,
    "triplet": TripletLoss,
    "arcface": ArcFaceLoss,
    "cosface": CosFaceLoss,
    "subcenter": SubCenterArcFaceLoss,
}


def make_objective(
    name: str,
    num_classes: int,
    feature_size: int,
    *,
    lam: float = 1e-3,
    alpha: float = 0.5,
    triplet_margin: float = 0.2,
    scale: float = 30.0,
    angular_margin: float = 0.5,
    cosine_margin: float = 0.35,
    subcenters: int = 3,
    seed: int = 0,
) -> Objective:
    """Build the objective called ``name`` (one of :data:`OBJECTIVES`) from the run's options."""
    if name == "center":
        return CenterLoss(num_classes, feature_size, lam=lam, alpha=alpha)
    if name == "softmax":
        return SoftmaxLoss(num_classes, feature_size, alpha=alpha)
    if name == "triplet":
        return TripletLoss(margin=triplet_margin)
    if name == "arcface":
        return ArcFaceLoss(num_classes, feature_size, scale, angular_margin, seed=seed)
    if name == "cosface":
        return CosFaceLoss(num_classes, feature_size, scale, cosine_margin, seed=seed)
    if name == "subcenter":
        return SubCenterArcFaceLoss(
            num_classes, feature_size, scale, angular_margin, subcenters, seed=seed
        )
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(OBJECTIVES)}")


def _additive_angular_margin(cosine, margin: float):
    """``cos(theta + m)``, or ``cos(theta) - m sin(m)`` where ``theta + m > pi`` (see ArcFace)."""
    cosine = tf.clip_by_value(cosine, -1.0 + 1e-6, 1.0 - 1e-6)  # finite d sine / d cosine
    sine = tf.sqrt(1.0 - tf.square(cosine))
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    return tf.where(
        cosine > math.cos(math.pi - margin), shifted, cosine - margin * math.sin(margin)
    )


def _flat_labels(labels):
    return tf.reshape(tf.cast(labels, tf.int32), [-1])
