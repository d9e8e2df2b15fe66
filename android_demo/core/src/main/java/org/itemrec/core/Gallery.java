package org.itemrec.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;

/**
 * The exported gallery: items (code, name) and their representative vectors.
 *
 * <p>Every vector is L2-normalised and belongs to one item ({@link #itemOf(int)}); an item may
 * have several (different package designs of one product). Immutable.
 */
public final class Gallery {
    private final int dim;
    private final List<String> codes;
    private final List<String> names;
    private final int[] itemIndex;
    private final float[] vectors;
    private final float threshold;
    private final int inputHeight;
    private final int inputWidth;
    private final byte[] fingerprint;

    /**
     * @param vectors {@code itemIndex.length * dim} floats, row-major, rows L2-normalised
     * @param threshold cosine threshold below which the best match is an unknown item; NaN for none
     * @throws IllegalArgumentException when the parts do not fit together
     */
    public Gallery(int dim, List<String> codes, List<String> names, int[] itemIndex, float[] vectors,
            float threshold, int inputHeight, int inputWidth, byte[] fingerprint) {
        if (dim <= 0 || inputHeight <= 0 || inputWidth <= 0) {
            throw new IllegalArgumentException("dim and input size must be positive");
        }
        if (codes.size() != names.size()) {
            throw new IllegalArgumentException(codes.size() + " codes but " + names.size() + " names");
        }
        if (new HashSet<>(codes).size() != codes.size()) {
            throw new IllegalArgumentException("item codes are not unique");
        }
        if ((long) itemIndex.length * dim != vectors.length) {
            throw new IllegalArgumentException("vectors must hold itemIndex.length x dim floats");
        }
        for (int item : itemIndex) {
            if (item < 0 || item >= codes.size()) {
                throw new IllegalArgumentException("item index " + item + " out of range");
            }
        }
        if (fingerprint.length != 32) {
            throw new IllegalArgumentException("fingerprint must be 32 bytes (SHA-256)");
        }
        this.dim = dim;
        this.codes = Collections.unmodifiableList(new ArrayList<>(codes));
        this.names = Collections.unmodifiableList(new ArrayList<>(names));
        this.itemIndex = itemIndex.clone();
        this.vectors = vectors.clone();
        this.threshold = threshold;
        this.inputHeight = inputHeight;
        this.inputWidth = inputWidth;
        this.fingerprint = fingerprint.clone();
    }

    public int dim() {
        return dim;
    }

    public int itemCount() {
        return codes.size();
    }

    public int vectorCount() {
        return itemIndex.length;
    }

    public String code(int item) {
        return codes.get(item);
    }

    public String name(int item) {
        return names.get(item);
    }

    public List<String> codes() {
        return codes;
    }

    /** The item (index into {@link #codes()}) that vector {@code vector} represents. */
    public int itemOf(int vector) {
        return itemIndex[vector];
    }

    /** A copy of vector {@code vector}. */
    public float[] vector(int vector) {
        float[] row = new float[dim];
        System.arraycopy(vectors, vector * dim, row, 0, dim);
        return row;
    }

    /** The row-major vector data, shared (not copied) for the matcher. */
    float[] vectorData() {
        return vectors;
    }

    /** Cosine threshold for "unknown item"; NaN when none was calibrated. */
    public float threshold() {
        return threshold;
    }

    public boolean hasThreshold() {
        return !Float.isNaN(threshold);
    }

    public int inputHeight() {
        return inputHeight;
    }

    public int inputWidth() {
        return inputWidth;
    }

    /** SHA-256 of the .tflite that made the vectors, as 64 lowercase hex digits. */
    public String fingerprintHex() {
        return Fingerprints.hex(fingerprint);
    }
}
