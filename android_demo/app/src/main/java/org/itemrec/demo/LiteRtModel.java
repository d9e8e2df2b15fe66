package org.itemrec.demo;

import java.nio.ByteBuffer;

import org.itemrec.core.ElementType;
import org.itemrec.core.EmbeddingModel;
import org.itemrec.core.ModelMismatchException;
import org.itemrec.core.TensorSpec;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/** The core's {@link EmbeddingModel} on a LiteRT interpreter: tensor details in, {@code run} through. */
final class LiteRtModel implements EmbeddingModel {
    private final Interpreter interpreter;
    private final TensorSpec input;
    private final TensorSpec output;

    /** Takes ownership of {@code interpreter}: closes it when the tensors are of a type the demo cannot use. */
    LiteRtModel(Interpreter interpreter) throws ModelMismatchException {
        this.interpreter = interpreter;
        try {
            input = spec(interpreter.getInputTensor(0));
            output = spec(interpreter.getOutputTensor(0));
        } catch (ModelMismatchException | RuntimeException e) {
            interpreter.close();
            throw e;
        }
    }

    private static TensorSpec spec(Tensor tensor) throws ModelMismatchException {
        ElementType type;
        switch (tensor.dataType()) {
            case UINT8:
                type = ElementType.UINT8;
                break;
            case INT8:
                type = ElementType.INT8;
                break;
            case FLOAT32:
                type = ElementType.FLOAT32;
                break;
            default:
                throw new ModelMismatchException("model tensors must be uint8, int8 or float32, got "
                        + tensor.dataType());
        }
        Tensor.QuantizationParams quantization = tensor.quantizationParams();
        return new TensorSpec(type, tensor.shape(), quantization.getScale(), quantization.getZeroPoint());
    }

    @Override
    public TensorSpec input() {
        return input;
    }

    @Override
    public TensorSpec output() {
        return output;
    }

    @Override
    public void run(ByteBuffer inputBuffer, ByteBuffer outputBuffer) {
        interpreter.run(inputBuffer, outputBuffer);
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
