package org.tensorflow.lite;

public interface Tensor {
    DataType dataType();

    int[] shape();

    QuantizationParams quantizationParams();

    class QuantizationParams {
        public QuantizationParams(float scale, int zeroPoint) { throw new UnsupportedOperationException("compile-check stub"); }

        public float getScale() { throw new UnsupportedOperationException("compile-check stub"); }

        public int getZeroPoint() { throw new UnsupportedOperationException("compile-check stub"); }
    }
}
