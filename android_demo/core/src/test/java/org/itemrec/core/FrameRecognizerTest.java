package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.util.Map;
import org.junit.Test;

/** The whole frame path on the JVM, with a fake interpreter in place of LiteRT. */
public class FrameRecognizerTest {
    private static final int DIM = 16;
    private static final int[] INPUT = {1, 24, 32, 3}; // the golden gallery's input size
    private static final int[] OUTPUT = {1, DIM};

    /** Records what it was fed and answers a fixed raw output, written as LiteRT does (relative puts). */
    static final class FakeModel implements EmbeddingModel {
        final TensorSpec input;
        final TensorSpec output;
        byte[] answer;
        byte[] fed;
        int runs;
        int closes;

        FakeModel(TensorSpec input, TensorSpec output, byte[] answer) {
            this.input = input;
            this.output = output;
            this.answer = answer;
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
        public void run(ByteBuffer in, ByteBuffer out) {
            fed = new byte[input.byteCount()];
            for (int k = 0; k < fed.length; k++) {
                fed[k] = in.get(k);
            }
            out.put(answer); // throws BufferOverflowException unless the recognizer rewound it
            runs++;
        }

        @Override
        public void close() {
            closes++;
        }
    }

    private static Gallery gallery() throws Exception {
        return GalleryReader.read(Golden.path("gallery.bin"));
    }

    /** An int8 output (scale 1/128) that is gallery vector {@code v}, quantised. */
    private static byte[] quantized(Gallery gallery, int v) {
        float[] vector = gallery.vector(v);
        byte[] q = new byte[DIM];
        for (int i = 0; i < DIM; i++) {
            q[i] = (byte) Math.max(-128, Math.min(127, Math.round(vector[i] * 128)));
        }
        return q;
    }

    private static FakeModel int8Model(byte[] answer) {
        return new FakeModel(new TensorSpec(ElementType.UINT8, INPUT, 1f, 0),
                new TensorSpec(ElementType.INT8, OUTPUT, 1f / 128, 0), answer);
    }

    @Test
    public void recognizesAGoldenFrameAndFeedsThePythonModelInput() throws Exception {
        Gallery gallery = gallery();
        FakeModel model = int8Model(quantized(gallery, 7)); // vector 7 belongs to item 4, SKU-0005
        Map<String, String> noise = Golden.tsv("images.tsv").get(0);
        assertEquals("noise_37x53", noise.get("name"));
        RgbaFrame frame = RgbaFrameTest.frame(Golden.ints("images/noise_37x53.argb"), 37, 53, 90);
        try (FrameRecognizer recognizer = FrameRecognizer.open(model, gallery.fingerprintHex(), gallery, 3)) {
            for (int round = 0; round < 2; round++) { // the second frame needs the output rewound
                Recognition result = recognizer.recognize(frame);
                assertEquals("SKU-0005", result.label());
                assertEquals(1.0, result.matches().get(0).score(), 2e-3); // int8 rounding of a unit vector
                assertEquals(3, result.matches().size());
            }
            ResizeBudget.check("pipeline noise_r90", Golden.bytes("frames/noise_r90.rgb"), model.fed);
            assertEquals(2, model.runs);
        }
        assertEquals(1, model.closes);
    }

    /** Review finding 3: an all-zero or NaN embedding used to throw on the analysis thread. */
    @Test
    public void degenerateEmbeddingsAreUnknownItemsNotExceptions() throws Exception {
        Gallery gallery = gallery();
        RgbaFrame frame = RgbaFrameTest.frame(new int[24 * 32], 24, 32, 0);
        try (FrameRecognizer zero = FrameRecognizer.open(int8Model(new byte[DIM]), gallery.fingerprintHex(),
                gallery, 3)) {
            Recognition result = zero.recognize(frame);
            assertFalse(result.isKnown());
            assertEquals(0f, result.matches().get(0).score(), 0f);
        }
        ByteBuffer nan = ByteBuffer.allocate(4 * DIM).order(java.nio.ByteOrder.nativeOrder());
        for (int i = 0; i < DIM; i++) {
            nan.putFloat(4 * i, Float.NaN);
        }
        FakeModel floatModel = new FakeModel(new TensorSpec(ElementType.FLOAT32, INPUT, 0f, 0),
                new TensorSpec(ElementType.FLOAT32, OUTPUT, 0f, 0), nan.array());
        try (FrameRecognizer recognizer = FrameRecognizer.open(floatModel, gallery.fingerprintHex(), gallery, 3)) {
            Recognition result = recognizer.recognize(frame);
            assertFalse(result.isKnown());
            assertTrue(result.matches().isEmpty());
            assertArrayEquals(new byte[4], java.util.Arrays.copyOf(floatModel.fed, 4)); // float 0.0f of a black pixel
        }
    }

    /** Review finding: the interpreter leaked when the gallery was refused. Each refusal closes it. */
    @Test
    public void refusesAMismatchedModelAndClosesIt() throws Exception {
        Gallery gallery = gallery();
        String sha = gallery.fingerprintHex();
        FakeModel[] refused = {
            int8Model(new byte[DIM]), // wrong fingerprint, below
            new FakeModel(new TensorSpec(ElementType.UINT8, new int[] {1, 32, 32, 3}, 1f, 0),
                    new TensorSpec(ElementType.INT8, OUTPUT, 1f / 128, 0), null),
            new FakeModel(new TensorSpec(ElementType.UINT8, INPUT, 1f, 0),
                    new TensorSpec(ElementType.INT8, new int[] {1, 8}, 1f / 128, 0), null),
            new FakeModel(new TensorSpec(ElementType.INT8, INPUT, 1f, 0),
                    new TensorSpec(ElementType.INT8, OUTPUT, 1f / 128, 0), null),
        };
        String[] words = {"another model", "gallery was made at 24x32", "8", "uint8"};
        for (int k = 0; k < refused.length; k++) {
            FakeModel model = refused[k];
            String fingerprint = k == 0 ? "0".repeat(64) : sha;
            ModelMismatchException error = assertThrows(ModelMismatchException.class,
                    () -> FrameRecognizer.open(model, fingerprint, gallery, 3));
            assertTrue(error.getMessage(), error.getMessage().contains(words[k]));
            assertEquals("model " + k + " closed", 1, model.closes);
        }
    }
}
