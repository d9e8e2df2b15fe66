"""Run in a subprocess by test_distributed.py: two logical CPU devices must exist before TF starts.

Prints one JSON line with the largest differences between a two-replica and a
one-replica run, and between the distributed center update and the numpy rule.
"""

import json

import numpy as np
from test_losses import center_update_reference  # this folder is on sys.path: a script's own
from train_helpers import tiny_backbone

from itemrec.train.keras_api import tf
from itemrec.train.losses import CenterLoss
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
    }
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main()
