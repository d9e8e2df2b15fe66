package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class ImageGeometryTest {
    @Test
    public void cropBoxesAgreeWithPythonIncludingHalfToEvenRounding() throws Exception {
        List<Map<String, String>> cases = Golden.tsv("images.tsv");
        for (Map<String, String> c : cases) {
            CropBox box = ImageGeometry.centerCropBox(i(c, "height"), i(c, "width"),
                    i(c, "target_height"), i(c, "target_width"));
            String name = c.get("name");
            assertEquals(name, i(c, "top"), box.top);
            assertEquals(name, i(c, "left"), box.left);
            assertEquals(name, i(c, "crop_height"), box.height);
            assertEquals(name, i(c, "crop_width"), box.width);
        }
        assertEquals(6, cases.size());
    }

    @Test
    public void tensorsAgreeWithOpenCvWithinTheBudget() throws Exception {
        long values = 0;
        long differing = 0;
        for (Map<String, String> c : Golden.tsv("images.tsv")) {
            String name = c.get("name");
            int[] argb = Golden.ints("images/" + name + ".argb");
            byte[] expected = Golden.bytes("images/" + name + ".rgb");
            byte[] actual = ImageGeometry.centerCropResize(argb, i(c, "height"), i(c, "width"),
                    i(c, "target_height"), i(c, "target_width"));
            differing += ResizeBudget.check(name, expected, actual);
            values += expected.length;
        }
        System.out.printf("preprocess overall: %.2f %% of %d values differ%n", 100.0 * differing / values, values);
        assertEquals(11_118, values);
    }

    @Test
    public void anImageAlreadyAtTheTargetSizeIsCopiedExactly() throws Exception {
        int[] argb = Golden.ints("images/identity_24x32.argb");
        assertArrayEquals(Golden.bytes("images/identity_24x32.rgb"),
                ImageGeometry.centerCropResize(argb, 24, 32, 24, 32));
    }

    @Test
    public void upscalingOneRowMatchesHandWorkedHalfPixelCentres() {
        // 1x2 -> 1x4: source x = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped to 0, 0.25,
        // 0.75, 1; red 0..200 gives 0, 50, 150, 200; green 255..0 gives 255, 191.25, 63.75, 0.
        int[] argb = {0xFF00FF07, 0x00C80007};
        byte[] rgb = ImageGeometry.centerCropResize(argb, 1, 2, 1, 4);
        int[] expected = {0, 255, 7, 50, 191, 7, 150, 64, 7, 200, 0, 7};
        for (int k = 0; k < expected.length; k++) {
            assertEquals("value " + k, expected[k], rgb[k] & 0xFF);
        }
    }

    @Test
    public void cropsTheLimitingSideCentrally() {
        // 2x4 image -> 1x1: the crop is the middle 2x2 (columns 1..2), averaged.
        int[] argb = {0, 0x000A0000, 0x00140000, 0x00FF0000, 0, 0x001E0000, 0x00280000, 0x00FF0000};
        assertEquals(25, ImageGeometry.centerCropResize(argb, 2, 4, 1, 1)[0] & 0xFF);
    }

    @Test
    public void refusesMismatchedSizes() {
        assertThrows(IllegalArgumentException.class, () -> ImageGeometry.centerCropResize(new int[5], 2, 3, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> ImageGeometry.centerCropBox(0, 3, 2, 2));
        assertThrows(IllegalArgumentException.class,
                () -> ImageGeometry.centerCropResize(new int[6], 2, 3, 2, 2, new byte[11]));
    }

    private static int i(Map<String, String> row, String column) {
        return Integer.parseInt(row.get(column));
    }
}
