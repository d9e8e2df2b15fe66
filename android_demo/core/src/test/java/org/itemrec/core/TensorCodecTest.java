package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.Test;

/** InputPacker and OutputDecoder against EmbeddingModel.prepare / .finish (golden tensors/). */
public class TensorCodecTest {
    /** Dequantisation is bit-identical; the float32 norm in numpy vs double here moves the last bits. */
    static final float EMBEDDING_TOLERANCE = 1e-6f;

    @Test
    public void inputsArePackedExactlyAsPythonPreparesThem() throws Exception {
        int checked = 0;
        for (Map<String, String> row : Golden.tsv("tensors.tsv")) {
            if (!row.get("direction").equals("input")) {
                continue;
            }
            String name = row.get("name");
            TensorSpec spec = spec(row);
            ByteBuffer packed = ByteBuffer.allocate(spec.byteCount()).order(ByteOrder.LITTLE_ENDIAN);
            InputPacker.forTensor(spec).pack(Golden.bytes("tensors/" + name + ".in"), packed);
            assertArrayEquals(name, Golden.bytes("tensors/" + name + ".out"), packed.array());
            checked++;
        }
        assertEquals(5, checked);
    }

    @Test
    public void outputsAreDecodedAsPythonFinishesThem() throws Exception {
        int checked = 0;
        double worst = 0;
        for (Map<String, String> row : Golden.tsv("tensors.tsv")) {
            if (!row.get("direction").equals("output")) {
                continue;
            }
            String name = row.get("name");
            ByteBuffer raw = ByteBuffer.wrap(Golden.bytes("tensors/" + name + ".in")).order(ByteOrder.LITTLE_ENDIAN);
            float[] actual = OutputDecoder.forTensor(spec(row), 16).decode(raw);
            float[] expected = Golden.floats("tensors/" + name + ".out");
            assertArrayEquals(name, expected, actual, EMBEDDING_TOLERANCE);
            for (int i = 0; i < expected.length; i++) {
                worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
            }
            checked++;
        }
        assertEquals(5, checked);
        System.out.printf("decoded embeddings vs EmbeddingModel.finish: max abs diff %.2e%n", worst);
    }

    @Test
    public void refusesTensorsTheDemoCannotFeedOrRead() {
        int[] image = {1, 24, 24, 3};
        assertThrows(ModelMismatchException.class,
                () -> InputPacker.forTensor(new TensorSpec(ElementType.INT8, image, 1f, 0)));
        assertThrows(ModelMismatchException.class,
                () -> InputPacker.forTensor(new TensorSpec(ElementType.UINT8, new int[] {1, 24, 24, 4}, 1f, 0)));
        assertThrows(ModelMismatchException.class,
                () -> InputPacker.forTensor(new TensorSpec(ElementType.UINT8, image, -1f, 0)));
        assertThrows(ModelMismatchException.class,
                () -> OutputDecoder.forTensor(new TensorSpec(ElementType.INT8, new int[] {1, 8}, 1f, 0), 16));
        assertThrows(ModelMismatchException.class,
                () -> OutputDecoder.forTensor(new TensorSpec(ElementType.INT8, new int[] {16}, 1f, 0), 16));
    }

    private static TensorSpec spec(Map<String, String> row) {
        String[] parts = row.get("shape").split("x");
        int[] shape = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            shape[i] = Integer.parseInt(parts[i]);
        }
        return new TensorSpec(ElementType.valueOf(row.get("dtype").toUpperCase(java.util.Locale.ROOT)), shape,
                Float.parseFloat(row.get("scale")), Integer.parseInt(row.get("zero_point")));
    }
}
