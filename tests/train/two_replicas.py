"""Run in a subprocess by test_distributed.py: two logical CPU devices must exist before TF starts.

Prints one JSON line with the largest differences between a two-replica and a
one-replica run (center loss; ArcFace with gradient clipping and a lower backbone rate),
and between the distributed center update and the numpy rule.
"""

import json

import numpy as np
from test_losses import center_update_reference  # this folder is on sys.path: a script's own
from train_helpers import tiny_backbone

from itemrec.train.keras_api import tf
from itemrec.train.losses import ArcFaceLoss, CenterLoss
from itemrec.train.model import build_network
from itemrec.train.trainer import EmbeddingTrainer

# Before TensorFlow's runtime starts (importing it does not start it).
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

# 3 full batches, then 7 images: tf.distribute splits them 4 + 3 between the replicas.
CLASSES, FEATURES, BATCH, STEPS = 4, 6, 8, 3
rng = np.random.default_rng(0)
images = rng.uniform(0, 255, size=(BATCH * STEPS + 7, 24, 24, 3)).astype(np.float32)
labels = rng.integers(0, CLASSES, size=BATCH * STEPS + 7).astype(np.int32)
initial_centers = rng.normal(size=(CLASSES, FEATURES)).astype(np.float32)


def train(strategy, initial_weights):
    with strategy.scope():
        network = build_network(tiny_backbone(24), CLASSES, FEATURES, hidden_units=10, dropout=0.0)
        network.set_weights(initial_weights)
        objective = CenterLoss(CLASSES, FEATURES, lam=0.1, alpha=0.5)
        objective.centers.assign(initial_centers)
        trainer = EmbeddingTrainer(network, objective)
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.05, momentum=0.9))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)
    history = trainer.fit(data, epochs=1, verbose=0).history
    return network.get_weights(), objective.centers.numpy(), history["loss"][0]


def train_arcface(strategy, initial_weights, initial_class_weights):
    """ArcFace, with clipping that binds (norm 0.05) and the backbone at 0.1 x the head's rate."""
    with strategy.scope():
        network = build_network(tiny_backbone(24), CLASSES, FEATURES, hidden_units=10, dropout=0.0)
        network.set_weights(initial_weights)
        objective = ArcFaceLoss(CLASSES, FEATURES, scale=8.0, margin=0.3)
        objective.class_weights.assign(initial_class_weights)
        trainer = EmbeddingTrainer(network, objective, backbone_lr_scale=0.1)
        optimizer = tf.keras.optimizers.SGD(0.5, momentum=0.9, global_clipnorm=0.05)
        trainer.compile(optimizer=optimizer)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)
    history = trainer.fit(data, epochs=1, verbose=0).history
    return network.get_weights(), objective.class_weights.numpy(), history["loss"][0]


def distributed_center_update(strategy):
    """One update from two replicas' halves of a batch, against the rule on the whole batch."""
    features = rng.normal(size=(BATCH, FEATURES)).astype(np.float32)
    with strategy.scope():
        objective = CenterLoss(CLASSES, FEATURES, alpha=0.5)
        objective.centers.assign(initial_centers)
    data = tf.data.Dataset.from_tensor_slices((labels[:BATCH], features)).batch(BATCH)
    batch = next(iter(strategy.experimental_distribute_dataset(data)))

    def step(y, x):
        objective.update(y, {"deep_feature": x})

    strategy.run(tf.function(step), args=batch)
    expected = center_update_reference(initial_centers, features, labels[:BATCH], 0.5)
    return float(np.abs(objective.centers.numpy() - expected).max())


def main():
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    reference = build_network(tiny_backbone(24), CLASSES, FEATURES, hidden_units=10, dropout=0.0)
    weights = reference.get_weights()
    one_w, one_c, one_loss = train(tf.distribute.get_strategy(), weights)
    two_w, two_c, two_loss = train(mirrored, weights)
    class_weights = ArcFaceLoss(CLASSES, FEATURES, seed=3).class_weights.numpy()
    arc_one_w, arc_one_c, arc_one_loss = train_arcface(
        tf.distribute.get_strategy(), weights, class_weights
    )
    arc_two_w, arc_two_c, arc_two_loss = train_arcface(mirrored, weights, class_weights)
    report = {
        "replicas": mirrored.num_replicas_in_sync,
        "weights_changed": max(
            float(np.abs(a - b).max()) for a, b in zip(one_w, weights, strict=True)
        ),
        "weights_diff": max(float(np.abs(a - b).max()) for a, b in zip(one_w, two_w, strict=True)),
        "centers_moved": float(np.abs(one_c - initial_centers).max()),
        "centers_diff": float(np.abs(one_c - two_c).max()),
        "loss_diff": abs(one_loss - two_loss),
        "update_vs_numpy": distributed_center_update(mirrored),
        "arcface_weights_changed": max(
            float(np.abs(a - b).max()) for a, b in zip(arc_one_w, weights, strict=True)
        ),
        "arcface_class_weights_moved": float(np.abs(arc_one_c - class_weights).max()),
        "arcface_weights_diff": max(
            float(np.abs(a - b).max()) for a, b in zip(arc_one_w, arc_two_w, strict=True)
        ),
        "arcface_class_weights_diff": float(np.abs(arc_one_c - arc_two_c).max()),
        "arcface_loss_diff": abs(arc_one_loss - arc_two_loss),
    }
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main()
