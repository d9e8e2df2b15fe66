package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import org.junit.Test;

public class RgbaFrameTest {
    /** Rows padded like a real ImageProxy plane (row stride > 4 x width); the padding must be skipped. */
    private static final int ROW_PADDING = 12;

    /** 2x3 sensor frame, pixel value = 10 * row + column, turned upright each way by hand. */
    @Test
    public void rotatesClockwiseByTheGivenDegrees() {
        int[] sensor = {0, 1, 2, 10, 11, 12};
        assertArrayEquals(sensor, upright(sensor, 2, 3, 0));
        // 90: the left column, bottom to top, becomes the top row.
        assertArrayEquals(new int[] {10, 0, 11, 1, 12, 2}, upright(sensor, 2, 3, 90));
        assertArrayEquals(new int[] {12, 11, 10, 2, 1, 0}, upright(sensor, 2, 3, 180));
        assertArrayEquals(new int[] {2, 12, 1, 11, 0, 10}, upright(sensor, 2, 3, 270));
        assertArrayEquals(upright(sensor, 2, 3, 270), upright(sensor, 2, 3, -90));
    }

    /** Golden frames (Python: np.rot90 clockwise, then center_crop_resize), including camera size. */
    @Test
    public void goldenFramesBecomeThePythonModelInputWithinTheBudget() throws Exception {
        Map<String, int[]> sizes = new HashMap<>();
        for (Map<String, String> image : Golden.tsv("images.tsv")) {
            sizes.put(image.get("name"), new int[] {i(image, "height"), i(image, "width")});
        }
        int checked = 0;
        for (Map<String, String> c : Golden.tsv("frames.tsv")) {
            String source = c.get("source");
            int[] size = sizes.get(source);
            int height = size[0] * i(c, "tiles_y");
            int width = size[1] * i(c, "tiles_x");
            int[] sensor = tile(Golden.ints("images/" + source + ".argb"), size[0], size[1], height, width);
            RgbaFrame frame = frame(sensor, height, width, i(c, "rotation"));
            int[] argb = new int[height * width];
            frame.toUprightArgb(argb);
            int targetHeight = i(c, "target_height");
            int targetWidth = i(c, "target_width");
            CropBox box = ImageGeometry.centerCropBox(frame.uprightHeight(), frame.uprightWidth(), targetHeight,
                    targetWidth);
            assertEquals(c.get("name"), i(c, "top") + "," + i(c, "left") + "," + i(c, "crop_height") + ","
                    + i(c, "crop_width"), box.top + "," + box.left + "," + box.height + "," + box.width);
            byte[] rgb = ImageGeometry.centerCropResize(argb, frame.uprightHeight(), frame.uprightWidth(),
                    targetHeight, targetWidth);
            ResizeBudget.check(c.get("name"), Golden.bytes("frames/" + c.get("name") + ".rgb"), rgb);
            checked++;
        }
        assertEquals(5, checked);
    }

    @Test
    public void refusesWhatIsNotAnRgbaFrame() {
        ByteBuffer pixels = ByteBuffer.allocate(2 * 3 * 4);
        assertThrows(IllegalArgumentException.class, () -> new RgbaFrame(pixels, 3, 2, 12, 3, 0));
        assertThrows(IllegalArgumentException.class, () -> new RgbaFrame(pixels, 3, 2, 16, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> new RgbaFrame(pixels, 3, 2, 12, 4, 45));
        assertThrows(IllegalArgumentException.class, () -> new RgbaFrame(pixels, 3, 2, 8, 4, 0));
    }

    /** The sensor frame as CameraX hands it over: RGBA bytes in padded rows. */
    static RgbaFrame frame(int[] argb, int height, int width, int rotation) {
        int rowStride = 4 * width + ROW_PADDING;
        ByteBuffer pixels = ByteBuffer.allocateDirect(rowStride * height);
        for (int k = 0; k < pixels.capacity(); k++) {
            pixels.put(k, (byte) 0x7F); // padding that must never be read
        }
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int p = argb[y * width + x];
                int at = y * rowStride + 4 * x;
                pixels.put(at, (byte) (p >> 16)).put(at + 1, (byte) (p >> 8)).put(at + 2, (byte) p)
                        .put(at + 3, (byte) (p >>> 24));
            }
        }
        return new RgbaFrame(pixels, width, height, rowStride, 4, rotation);
    }

    private static int[] upright(int[] values, int height, int width, int rotation) {
        int[] argb = new int[values.length];
        for (int k = 0; k < values.length; k++) {
            argb[k] = 0xFF000000 | values[k];
        }
        int[] out = new int[values.length];
        frame(argb, height, width, rotation).toUprightArgb(out);
        for (int k = 0; k < out.length; k++) {
            out[k] &= 0xFFFFFF;
        }
        return out;
    }

    private static int[] tile(int[] image, int height, int width, int tiledHeight, int tiledWidth) {
        int[] tiled = new int[tiledHeight * tiledWidth];
        for (int y = 0; y < tiledHeight; y++) {
            for (int x = 0; x < tiledWidth; x++) {
                tiled[y * tiledWidth + x] = image[(y % height) * width + x % width];
            }
        }
        return tiled;
    }

    private static int i(Map<String, String> row, String column) {
        return Integer.parseInt(row.get(column));
    }
}
