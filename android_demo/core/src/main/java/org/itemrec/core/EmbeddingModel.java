package org.itemrec.core;

import java.nio.ByteBuffer;

/** The interpreter behind {@link FrameRecognizer}: one input and one output tensor (LiteRT in the app). */
public interface EmbeddingModel extends AutoCloseable {
    TensorSpec input();

    TensorSpec output();

    /** Runs the model on {@code input} (position 0, native order) and writes the result into {@code output}. */
    void run(ByteBuffer input, ByteBuffer output);

    @Override
    void close();
}
