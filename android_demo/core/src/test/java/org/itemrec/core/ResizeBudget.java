package org.itemrec.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

/**
 * How closely the Java resize must agree with cv2.INTER_LINEAR (Python's reference) on one image.
 * OpenCV interpolates uint8 in 11-bit fixed point; {@link ImageGeometry} interpolates in float and
 * rounds half up, so single values differ by one grey level. The share that differs depends on
 * the scale factor, hardly on the content. Measured on a 640x480 frame (a photo, Gaussian noise,
 * the tiled golden photo): 0 % at 96, 160 and 240 (integer ratios), 10.8-11.0 % at 224,
 * 12.3-12.7 % at 260, 12.5-12.8 % at 299; 12.2 % on the small noise golden image. Rounding by
 * truncation instead of half up makes 37 % differ at 224, so 15 % still catches it.
 */
final class ResizeBudget {
    /** Largest |Java - cv2| of any value, in grey levels. */
    static final int MAX_ABS_DIFF = 1;
    /** Largest share of one image's values that may differ at all. */
    static final double MAX_DIFFERING_SHARE = 0.15;

    private ResizeBudget() {}

    /** Asserts the budget for one image; returns how many values differ. */
    static int check(String name, byte[] expected, byte[] actual) {
        assertEquals(name, expected.length, actual.length);
        int worst = 0;
        int differing = 0;
        for (int k = 0; k < expected.length; k++) {
            int diff = Math.abs((expected[k] & 0xFF) - (actual[k] & 0xFF));
            worst = Math.max(worst, diff);
            differing += diff > 0 ? 1 : 0;
        }
        System.out.printf("preprocess %-20s vs cv2.INTER_LINEAR: max abs diff %d, %d of %d values differ (%.2f %%)%n",
                name, worst, differing, expected.length, 100.0 * differing / expected.length);
        assertTrue(name + " max abs diff " + worst, worst <= MAX_ABS_DIFF);
        assertTrue(name + ": " + differing + " values differ", differing <= MAX_DIFFERING_SHARE * expected.length);
        return differing;
    }
}
