"""The PCA projection and the animation, on hand-worked numbers."""

import numpy as np
from PIL import Image

from itemrec.train.plots import pca_2d, plot_losses, plot_scatter, write_gif


def test_pca_recovers_the_main_axes():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    t -= t.mean()
    s = rng.normal(size=200)
    s -= s.mean() + (s @ t) / (t @ t) * t  # exactly uncorrelated with t
    # Variance 9 along (1, 1, 0)/sqrt2 and 1 along (0, 0, 1): the projection has those spreads.
    points = np.stack([3 * t / np.sqrt(2), 3 * t / np.sqrt(2), s], axis=1)
    projected = pca_2d(points)
    # Signs are fixed (largest loading positive), so the axes come out as +t and +s.
    np.testing.assert_allclose(projected[:, 0], 3 * t, atol=1e-9)
    np.testing.assert_allclose(projected[:, 1], s, atol=1e-9)


def test_figures_and_gif(tmp_path):
    history = [
        {"phase": "frozen", "epoch": 0, "global_epoch": 0, "softmax_loss": 2.0, "center_loss": 5.0},
        {
            "phase": "finetune",
            "epoch": 0,
            "global_epoch": 1,
            "softmax_loss": 1.0,
            "center_loss": 3.0,
            "val_rank1": 0.5,
        },
    ]
    plot_losses(history, tmp_path / "loss.png")
    frames = []
    for i in range(3):
        frames.append(tmp_path / f"epoch_{i}.png")
        points = np.random.default_rng(i).normal(size=(6, 2))
        plot_scatter(points, np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], f"{i}", frames[-1])
    assert write_gif(frames, tmp_path / "f.gif") and not write_gif([], tmp_path / "g.gif")
    gif = Image.open(tmp_path / "f.gif")
    assert gif.n_frames == 3 and Image.open(tmp_path / "loss.png").size[0] > 100


def test_drawing_throttle_draws_now_then_keeps_the_latest_for_the_end():
    from itemrec.train.callbacks import DrawingThrottle

    drawn = []
    throttle = DrawingThrottle(interval=3600)
    for epoch in range(4):
        throttle(lambda epoch=epoch: drawn.append(epoch))
    assert drawn == [0]  # the first at once, the others within the interval wait
    throttle.flush()
    throttle.flush()  # nothing left the second time
    assert drawn == [0, 3]  # only the latest waiting drawing is made
    always = DrawingThrottle(interval=0)
    for epoch in range(3):
        always(lambda epoch=epoch: drawn.append(epoch))
    assert drawn == [0, 3, 0, 1, 2]
