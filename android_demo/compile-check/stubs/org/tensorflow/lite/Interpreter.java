package org.tensorflow.lite;

import java.nio.ByteBuffer;

public final class Interpreter implements AutoCloseable {
    public Interpreter(ByteBuffer byteBuffer, Options options) { throw new UnsupportedOperationException("compile-check stub"); }

    public Tensor getInputTensor(int inputIndex) { throw new UnsupportedOperationException("compile-check stub"); }

    public Tensor getOutputTensor(int outputIndex) { throw new UnsupportedOperationException("compile-check stub"); }

    public void run(Object input, Object output) { throw new UnsupportedOperationException("compile-check stub"); }

    @Override
    public void close() { throw new UnsupportedOperationException("compile-check stub"); }

    public static class Options {
        public Options() {}

        public Options setNumThreads(int numThreads) { throw new UnsupportedOperationException("compile-check stub"); }
    }
}
