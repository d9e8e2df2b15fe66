package org.itemrec.demo;

import android.content.Context;
import android.content.res.AssetFileDescriptor;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

import org.itemrec.core.Gallery;
import org.itemrec.core.GalleryReader;
import org.itemrec.core.ImageGeometry;
import org.itemrec.core.Matcher;
import org.itemrec.core.Recognition;
import org.itemrec.core.Vectors;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * One frame in, top-k items out: the core's preprocessing (centre crop + bilinear resize to the
 * model's uint8 RGB input), the LiteRT interpreter, then the core's nearest-representative lookup.
 * Not thread-safe: call it from one (the analysis) thread.
 */
final class Recognizer implements AutoCloseable {
    static final int TOP_K = 3;

    private final Interpreter interpreter;
    private final Matcher matcher;
    private final int inputHeight;
    private final int inputWidth;
    private final DataType inputType;
    private final DataType outputType;
    private final float outputScale;
    private final int outputZeroPoint;
    private final byte[] rgb;
    private final ByteBuffer input;
    private final ByteBuffer output;
    private long lastModelNanos;

    /** Loads {@code modelAsset} and {@code galleryAsset}, refusing a gallery made by another model. */
    static Recognizer fromAssets(Context context, String modelAsset, String galleryAsset, int threads)
            throws IOException {
        MappedByteBuffer model = mapAsset(context, modelAsset);
        Gallery gallery;
        try (InputStream in = context.getAssets().open(galleryAsset)) {
            gallery = GalleryReader.read(in, "assets/" + galleryAsset);
        }
        String fingerprint = sha256Hex(model);
        if (!fingerprint.equals(gallery.fingerprintHex())) {
            throw new IOException("assets/" + galleryAsset + " was made by another model (fingerprint "
                    + gallery.fingerprintHex().substring(0, 12) + "…, assets/" + modelAsset + " is "
                    + fingerprint.substring(0, 12) + "…): export the gallery again with this model");
        }
        Interpreter.Options options = new Interpreter.Options().setNumThreads(threads);
        return new Recognizer(new Interpreter(model, options), gallery);
    }

    Recognizer(Interpreter interpreter, Gallery gallery) throws IOException {
        this.interpreter = interpreter;
        this.matcher = new Matcher(gallery);
        Tensor in = interpreter.getInputTensor(0);
        Tensor out = interpreter.getOutputTensor(0);
        int[] inShape = in.shape();
        if (inShape.length != 4 || inShape[0] != 1 || inShape[3] != 3) {
            throw new IOException("model input must be [1, height, width, 3], got " + Arrays.toString(inShape));
        }
        inputHeight = inShape[1];
        inputWidth = inShape[2];
        if (inputHeight != gallery.inputHeight() || inputWidth != gallery.inputWidth()) {
            throw new IOException("model input is " + inputHeight + "x" + inputWidth + " but the gallery was made at "
                    + gallery.inputHeight() + "x" + gallery.inputWidth());
        }
        inputType = in.dataType();
        if (inputType != DataType.UINT8 && inputType != DataType.FLOAT32) {
            throw new IOException("model input must be uint8 (or float32 0..255), got " + inputType);
        }
        int[] outShape = out.shape();
        if (outShape.length != 2 || outShape[1] != gallery.dim()) {
            throw new IOException("model output " + Arrays.toString(outShape) + " does not match the gallery's "
                    + gallery.dim() + "-d vectors");
        }
        outputType = out.dataType();
        if (outputType != DataType.FLOAT32 && outputType != DataType.UINT8 && outputType != DataType.INT8) {
            throw new IOException("model output must be float32, uint8 or int8, got " + outputType);
        }
        outputScale = out.quantizationParams().getScale();
        outputZeroPoint = out.quantizationParams().getZeroPoint();
        rgb = new byte[inputHeight * inputWidth * 3];
        input = ByteBuffer.allocateDirect(in.numBytes()).order(ByteOrder.nativeOrder());
        output = ByteBuffer.allocateDirect(out.numBytes()).order(ByteOrder.nativeOrder());
    }

    /** Recognises one upright frame given as ARGB pixels (height x width, row-major). */
    Recognition recognise(int[] argb, int height, int width) {
        ImageGeometry.centerCropResize(argb, height, width, inputHeight, inputWidth, rgb);
        input.rewind();
        if (inputType == DataType.UINT8) {
            input.put(rgb);
        } else {
            for (byte value : rgb) {
                input.putFloat(value & 0xFF); // 0..255: normalisation is a layer inside the model
            }
        }
        input.rewind();
        output.rewind();
        long start = System.nanoTime();
        interpreter.run(input, output);
        lastModelNanos = System.nanoTime() - start;
        output.rewind();
        float[] embedding = new float[matcher.gallery().dim()];
        if (outputType == DataType.FLOAT32) {
            output.asFloatBuffer().get(embedding);
        } else {
            byte[] quantized = new byte[embedding.length];
            output.get(quantized);
            embedding = Vectors.dequantize(quantized, outputType == DataType.INT8, outputScale, outputZeroPoint);
        }
        return matcher.recognise(embedding, TOP_K);
    }

    long lastModelMillis() {
        return lastModelNanos / 1_000_000;
    }

    @Override
    public void close() {
        interpreter.close();
    }

    private static MappedByteBuffer mapAsset(Context context, String name) throws IOException {
        try (AssetFileDescriptor fd = context.getAssets().openFd(name);
                FileInputStream stream = new FileInputStream(fd.getFileDescriptor());
                FileChannel channel = stream.getChannel()) {
            return channel.map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
        }
    }

    private static String sha256Hex(ByteBuffer bytes) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(bytes.duplicate());
            StringBuilder hex = new StringBuilder(64);
            for (byte b : sha.digest()) {
                hex.append(String.format("%02x", b & 0xFF));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing", e);
        }
    }
}
