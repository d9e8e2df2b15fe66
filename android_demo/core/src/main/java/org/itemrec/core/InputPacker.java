package org.itemrec.core;

import java.nio.ByteBuffer;

/**
 * Writes the model's RGB image (uint8, height x width x 3) into its input tensor, as the device's
 * Python runtime does ({@code EmbeddingModel.prepare}): uint8 as is when the tensor's
 * quantisation is (1, 0) or none, otherwise requantised to {@code rint(v / scale + zeroPoint)}
 * clamped to 0..255; float32 as the values 0..255 (normalisation is a layer inside the model).
 * An int8 input is refused, as in Python.
 */
public final class InputPacker {
    private final TensorSpec tensor;
    private final int height;
    private final int width;
    /** uint8 value -> stored byte; null for a float32 input. */
    private final byte[] uint8Table;

    private InputPacker(TensorSpec tensor, byte[] uint8Table) {
        this.tensor = tensor;
        this.height = tensor.shape()[1];
        this.width = tensor.shape()[2];
        this.uint8Table = uint8Table;
    }

    /** @throws ModelMismatchException unless the tensor is [1, height, width, 3] uint8 or float32 */
    public static InputPacker forTensor(TensorSpec input) throws ModelMismatchException {
        int[] shape = input.shape();
        if (shape.length != 4 || shape[0] != 1 || shape[1] <= 0 || shape[2] <= 0 || shape[3] != 3) {
            throw new ModelMismatchException("model input must be [1, height, width, 3], got " + input);
        }
        switch (input.type()) {
            case FLOAT32:
                return new InputPacker(input, null);
            case UINT8:
                return new InputPacker(input, uint8Table(input));
            default:
                throw new ModelMismatchException("model input must be uint8 (or float32 0..255), got " + input);
        }
    }

    private static byte[] uint8Table(TensorSpec input) throws ModelMismatchException {
        float scale = input.scale();
        int zeroPoint = input.zeroPoint();
        boolean asIs = zeroPoint == 0 && (scale == 1f || scale == 0f);
        if (!asIs && !(scale > 0)) {
            throw new ModelMismatchException("model input has an unusable quantisation: " + input);
        }
        byte[] table = new byte[256];
        for (int v = 0; v < 256; v++) {
            double q = asIs ? v : Math.rint(v / (double) scale + zeroPoint); // rint: half to even, as np.rint
            table[v] = (byte) Math.max(0, Math.min(255, q));
        }
        return table;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /**
     * Writes {@code rgb} into {@code out} (the tensor's bytes, in {@code out}'s byte order) with
     * absolute puts: the buffer's position is not used (Java 9's covariant {@code ByteBuffer}
     * position methods do not exist on older Android, so the core never calls them).
     */
    public void pack(byte[] rgb, ByteBuffer out) {
        if (rgb.length != height * width * 3 || out.capacity() < tensor.byteCount()) {
            throw new IllegalArgumentException("rgb must hold " + height + " x " + width + " x 3 bytes and out "
                    + tensor.byteCount() + " bytes");
        }
        for (int i = 0; i < rgb.length; i++) {
            if (uint8Table != null) {
                out.put(i, uint8Table[rgb[i] & 0xFF]);
            } else {
                out.putFloat(4 * i, rgb[i] & 0xFF);
            }
        }
    }
}
