package org.itemrec.core;

import java.util.Arrays;

/**
 * Shape, element type and quantisation of one model tensor, as the interpreter reports them
 * ({@code real = scale * (q - zeroPoint)}; scale 0 means "not quantised"). Immutable.
 */
public final class TensorSpec {
    private final ElementType type;
    private final int[] shape;
    private final float scale;
    private final int zeroPoint;

    public TensorSpec(ElementType type, int[] shape, float scale, int zeroPoint) {
        this.type = type;
        this.shape = shape.clone();
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    public ElementType type() {
        return type;
    }

    public int[] shape() {
        return shape.clone();
    }

    public float scale() {
        return scale;
    }

    public int zeroPoint() {
        return zeroPoint;
    }

    public int elementCount() {
        int count = 1;
        for (int size : shape) {
            count *= size;
        }
        return count;
    }

    public int byteCount() {
        return elementCount() * type.bytes;
    }

    @Override
    public String toString() {
        return type + Arrays.toString(shape) + (scale != 0 ? " scale " + scale + " zero point " + zeroPoint : "");
    }
}
