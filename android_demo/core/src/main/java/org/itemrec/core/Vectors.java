package org.itemrec.core;

/** Embedding arithmetic: L2 normalisation, dot product, dequantisation of an int8/uint8 output. */
public final class Vectors {
    private Vectors() {}

    /**
     * Returns {@code v / ||v||_2} (norm accumulated in double), or an unchanged copy when the norm
     * is zero or NaN: the device's Python runtime ({@code EmbeddingModel.finish}) does the same, so
     * a degenerate embedding scores 0 (zero vector) or no item at all (NaN) instead of throwing.
     */
    public static float[] l2Normalize(float[] v) {
        double sum = 0;
        for (float x : v) {
            sum += (double) x * x;
        }
        double norm = Math.sqrt(sum);
        float[] unit = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            unit[i] = norm > 0 ? (float) (v[i] / norm) : v[i];
        }
        return unit;
    }

    /** {@code sum_i a[i] * b[bOffset + i]} over {@code a.length} elements, accumulated in double. */
    public static double dot(float[] a, float[] b, int bOffset) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += (double) a[i] * b[bOffset + i];
        }
        return sum;
    }

    /**
     * Dequantises a quantised tensor: {@code real = scale * (q - zeroPoint)}, reading each byte as
     * int8 when {@code signed} and as uint8 otherwise.
     */
    public static float[] dequantize(byte[] quantized, boolean signed, float scale, int zeroPoint) {
        float[] real = new float[quantized.length];
        for (int i = 0; i < quantized.length; i++) {
            int q = signed ? quantized[i] : quantized[i] & 0xFF;
            real[i] = scale * (q - zeroPoint);
        }
        return real;
    }
}
