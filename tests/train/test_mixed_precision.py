"""``--mixed-precision``: float16 computations; float32 variables, centers, losses, saved models.

mixed_float16 runs on a CPU (slowly), so these exercise the GPU code path itself: the
loss-scaling optimizer, float32 heads and objective, and the float32 copy a run saves.
"""

import numpy as np
import pytest
from train_helpers import tiny_backbone

from itemrec.train.config import resolve_config
from itemrec.train.distribute import precision_policy
from itemrec.train.keras_api import keras, tf
from itemrec.train.losses import CenterLoss
from itemrec.train.model import build_network, float32_model
from itemrec.train.run import train_run
from itemrec.train.run_dir import RunDir, load_run
from itemrec.train.trainer import EmbeddingTrainer

CLASSES, FEATURES, SIZE = 3, 6, 24
rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (12, SIZE, SIZE, 3)).astype(np.float32)
LABELS = rng.integers(0, CLASSES, 12).astype(np.int32)


def _network():
    return build_network(tiny_backbone(SIZE), CLASSES, FEATURES, hidden_units=10, dropout=0.0)


def _train(mixed: bool, weights):
    """Three steps of SGD from ``weights``: (network, objective, trainer, loss per epoch)."""
    with precision_policy(mixed):
        network = _network()
        network.set_weights(weights)
        objective = CenterLoss(CLASSES, FEATURES, lam=0.1)
        trainer = EmbeddingTrainer(network, objective)
        trainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        data = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(4)
        history = trainer.fit(data, epochs=1, verbose=0).history
    return network, objective, trainer, history["loss"]


def test_mixed_float16_trains_like_float32():
    initial = _network().get_weights()
    single, single_objective, _, single_loss = _train(False, initial)
    mixed, mixed_objective, trainer, mixed_loss = _train(True, initial)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the block

    # float16 computations, float32 variables, outputs, centers and loss, a scaled loss.
    assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert float(trainer.optimizer.loss_scale) > 1  # 32768 after 3 finite steps
    convolutions = [layer for layer in mixed.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions and all(layer.compute_dtype == "float16" for layer in convolutions)
    assert all(variable.dtype == tf.float32 for variable in mixed.variables)
    outputs = mixed(IMAGES[:2])
    assert {name: tensor.dtype for name, tensor in outputs.items()} == {
        "logits": tf.float32,
        "deep_feature": tf.float32,
        "embedding": tf.float32,
    }
    assert mixed_objective.centers.dtype == tf.float32
    terms = mixed_objective.terms(LABELS[:2], outputs)
    assert all(term.dtype == tf.float32 for term in terms.values())

    # The loss scale is undone: the same steps as float32, to float16 rounding (measured:
    # weights within 2.7e-4 while training moved them by 6e-2; loss and centers within 4e-5).
    moved = max(np.abs(a - b).max() for a, b in zip(single.get_weights(), initial, strict=True))
    apart = max(
        np.abs(a - b).max() for a, b in zip(single.get_weights(), mixed.get_weights(), strict=True)
    )
    assert moved > 1e-2 and apart < 3e-3
    assert np.isfinite(mixed_loss[0]) and mixed_loss[0] == pytest.approx(single_loss[0], abs=5e-4)
    np.testing.assert_allclose(
        mixed_objective.centers.numpy(), single_objective.centers.numpy(), atol=5e-4
    )


def test_float32_model_copies_a_mixed_network():
    with precision_policy(True):
        mixed = _network()
    copy = float32_model(mixed)
    assert copy is not mixed and all(layer.compute_dtype == "float32" for layer in copy.layers)
    for a, b in zip(copy.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        copy(IMAGES)["embedding"].numpy(), mixed(IMAGES)["embedding"].numpy(), atol=5e-3
    )
    single = _network()
    assert float32_model(single) is single


@pytest.mark.slow
def test_mixed_precision_run_saves_float32_models(class_folders, tmp_path):
    config = resolve_config(
        {},
        {
            "data": str(class_folders),
            "out": str(tmp_path / "run"),
            "weights": "none",
            "image_size": 32,
            "frozen_epochs": 0,
            "finetune_epochs": 1,
            "batch_size": 4,
            "val_classes": 0,
            "scatter_classes": 0,
            "mixed_precision": True,
        },
    )
    summary = train_run(config)
    assert keras.mixed_precision.global_policy().name == "float32"
    run = RunDir(config.out)
    assert summary["epochs"] == 1 and np.isfinite(run.read_history()[0]["loss"])
    centers = np.load(run.centers)
    assert centers.dtype == np.float32 and np.abs(centers).max() > 0
    embedder = load_run(run.path).embedder
    assert all(layer.compute_dtype == "float32" for layer in embedder.layers)
    vectors = embedder(rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    assert vectors.dtype == tf.float32
    np.testing.assert_allclose(np.linalg.norm(vectors.numpy(), axis=1), 1.0, atol=1e-5)
