package org.itemrec.core;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One camera frame in, the top-k items out: make it upright ({@link RgbaFrame}), centre-crop and
 * resize it to the model's input ({@link ImageGeometry}), pack it ({@link InputPacker}), run the
 * model, decode the embedding ({@link OutputDecoder}) and look it up ({@link Matcher}).
 * It owns the model. Not thread-safe: call it from one (the analysis) thread.
 */
public final class FrameRecognizer implements AutoCloseable {
    private final EmbeddingModel model;
    private final Matcher matcher;
    private final InputPacker packer;
    private final OutputDecoder decoder;
    private final int topK;
    private final byte[] rgb;
    private final ByteBuffer input;
    private final ByteBuffer output;
    private int[] argb = new int[0];
    private long lastModelNanos;

    private FrameRecognizer(EmbeddingModel model, Gallery gallery, int topK) throws ModelMismatchException {
        this.model = model;
        this.matcher = new Matcher(gallery);
        this.packer = InputPacker.forTensor(model.input());
        this.decoder = OutputDecoder.forTensor(model.output(), gallery.dim());
        if (packer.height() != gallery.inputHeight() || packer.width() != gallery.inputWidth()) {
            throw new ModelMismatchException("model input is " + packer.height() + "x" + packer.width()
                    + " but the gallery was made at " + gallery.inputHeight() + "x" + gallery.inputWidth());
        }
        if (topK <= 0) {
            throw new IllegalArgumentException("topK must be positive, got " + topK);
        }
        this.topK = topK;
        this.rgb = new byte[packer.height() * packer.width() * 3];
        this.input = ByteBuffer.allocateDirect(model.input().byteCount()).order(ByteOrder.nativeOrder());
        this.output = ByteBuffer.allocateDirect(model.output().byteCount()).order(ByteOrder.nativeOrder());
    }

    /**
     * Pairs {@code model} with {@code gallery}, refusing a gallery made by another model (its
     * fingerprint is not {@code modelSha256Hex}) or tensors that do not fit. The model is closed
     * when it is refused, so a refusal leaks no interpreter.
     */
    public static FrameRecognizer open(EmbeddingModel model, String modelSha256Hex, Gallery gallery, int topK)
            throws ModelMismatchException {
        try {
            if (!modelSha256Hex.equals(gallery.fingerprintHex())) {
                throw new ModelMismatchException("the gallery was made by another model (fingerprint "
                        + gallery.fingerprintHex().substring(0, 12) + "…, this model is "
                        + modelSha256Hex.substring(0, Math.min(12, modelSha256Hex.length()))
                        + "…): export the gallery again with this model");
            }
            return new FrameRecognizer(model, gallery, topK);
        } catch (ModelMismatchException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    public int inputHeight() {
        return packer.height();
    }

    public int inputWidth() {
        return packer.width();
    }

    /** Recognises one camera frame. */
    public Recognition recognize(RgbaFrame frame) {
        int height = frame.uprightHeight();
        int width = frame.uprightWidth();
        if (argb.length != height * width) {
            argb = new int[height * width];
        }
        frame.toUprightArgb(argb);
        ImageGeometry.centerCropResize(argb, height, width, packer.height(), packer.width(), rgb);
        packer.pack(rgb, input);
        Buffer written = output; // the interpreter writes from the position; Buffer.rewind() exists on every Android
        written.rewind();
        long start = System.nanoTime();
        model.run(input, output);
        lastModelNanos = System.nanoTime() - start;
        return matcher.recognize(decoder.decode(output), topK);
    }

    /** How long the model took on the last frame. */
    public long lastModelNanos() {
        return lastModelNanos;
    }

    @Override
    public void close() {
        model.close();
    }
}
