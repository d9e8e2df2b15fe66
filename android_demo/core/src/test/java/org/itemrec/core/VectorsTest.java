package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class VectorsTest {
    @Test
    public void l2NormalizeDividesByTheEuclideanNorm() {
        assertArrayEquals(new float[] {0.6f, -0.8f, 0f}, Vectors.l2Normalize(new float[] {3, -4, 0}), 1e-7f);
        assertArrayEquals(new float[] {0.5f, 0.5f, 0.5f, 0.5f},
                Vectors.l2Normalize(new float[] {1e-20f, 1e-20f, 1e-20f, 1e-20f}), 1e-7f);
    }

    /** As EmbeddingModel.finish: a zero or NaN embedding comes back unchanged instead of throwing. */
    @Test
    public void l2NormalizeLeavesZeroAndNanVectorsAsPythonDoes() {
        assertArrayEquals(new float[] {0, 0}, Vectors.l2Normalize(new float[] {0, 0}), 0f);
        float[] nan = Vectors.l2Normalize(new float[] {Float.NaN, 1});
        assertTrue(Float.isNaN(nan[0]));
        assertEquals(1f, nan[1], 0f);
        // An infinite norm divides (x / inf = 0, inf / inf = NaN), as numpy does.
        float[] infinite = Vectors.l2Normalize(new float[] {Float.POSITIVE_INFINITY, 1});
        assertTrue(Float.isNaN(infinite[0]));
        assertEquals(0f, infinite[1], 0f);
    }

    @Test
    public void dotStartsAtTheOffset() {
        assertEquals(1 * 5 + 2 * 6, Vectors.dot(new float[] {1, 2}, new float[] {9, 5, 6}, 1), 0);
    }

    @Test
    public void dequantizeReadsInt8AndUint8() {
        byte[] q = {(byte) 0x80, 0, 127, (byte) 0xFF};
        // int8: -128, 0, 127, -1 ; the L2_NORMALIZATION output of TFLite int8 has scale 1/128, zp 0
        assertArrayEquals(new float[] {-1f, 0f, 127f / 128, -1f / 128},
                Vectors.dequantize(q, true, 1f / 128, 0), 0f);
        // uint8: 128, 0, 127, 255 with zero point 128
        assertArrayEquals(new float[] {0f, -1f, -1f / 128, 127f / 128},
                Vectors.dequantize(q, false, 1f / 128, 128), 0f);
    }
}
