package org.itemrec.core;

import java.nio.ByteBuffer;

/**
 * Turns the model's output tensor into an embedding, as the device's Python runtime does
 * ({@code EmbeddingModel.finish}): an int8/uint8 output with a non-zero scale is dequantised,
 * {@code scale * (q - zeroPoint)}; then the vector is L2-normalised (see
 * {@link Vectors#l2Normalize}, which leaves a zero or NaN vector as it is).
 */
public final class OutputDecoder {
    private final TensorSpec tensor;
    private final int dim;

    private OutputDecoder(TensorSpec tensor, int dim) {
        this.tensor = tensor;
        this.dim = dim;
    }

    /** @throws ModelMismatchException unless the tensor is [1, dim] */
    public static OutputDecoder forTensor(TensorSpec output, int dim) throws ModelMismatchException {
        int[] shape = output.shape();
        if (shape.length != 2 || shape[0] != 1 || shape[1] != dim) {
            throw new ModelMismatchException("model output " + output + " does not match the gallery's "
                    + dim + "-d vectors");
        }
        return new OutputDecoder(output, dim);
    }

    public int dim() {
        return dim;
    }

    /** The embedding in {@code raw} (the tensor's bytes from index 0, in {@code raw}'s byte order). */
    public float[] decode(ByteBuffer raw) {
        float[] values = new float[dim];
        if (tensor.type() == ElementType.FLOAT32) {
            for (int i = 0; i < dim; i++) {
                values[i] = raw.getFloat(4 * i);
            }
            return Vectors.l2Normalize(values);
        }
        byte[] quantized = new byte[dim];
        for (int i = 0; i < dim; i++) {
            quantized[i] = raw.get(i);
        }
        boolean signed = tensor.type() == ElementType.INT8;
        if (tensor.scale() != 0) {
            values = Vectors.dequantize(quantized, signed, tensor.scale(), tensor.zeroPoint());
        } else {
            for (int i = 0; i < dim; i++) {
                values[i] = signed ? quantized[i] : quantized[i] & 0xFF;
            }
        }
        return Vectors.l2Normalize(values);
    }
}
