package org.itemrec.core;

/**
 * The contract's image geometry (edge_runtime/geometry.py) on an Android-style ARGB pixel array:
 * the largest centred crop with the model's aspect, then a bilinear resize with half-pixel
 * centres and no antialiasing (OpenCV's {@code INTER_LINEAR}), giving the model's uint8 RGB input,
 * height x width x 3, row-major. Sizes are given height first, as in the Python code.
 *
 * <p>OpenCV interpolates 8-bit images in 11-bit fixed point; this class interpolates in float and
 * rounds half up, so single values may differ by one grey level (measured by the golden tests).
 */
public final class ImageGeometry {
    private ImageGeometry() {}

    /**
     * The centred crop with aspect {@code targetWidth / targetHeight}: it keeps the whole of the
     * limiting side and trims the other equally from both ends (the odd pixel from bottom/right).
     * The crop length is rounded half to even, as Python's {@code round}.
     */
    public static CropBox centerCropBox(int height, int width, int targetHeight, int targetWidth) {
        if (height <= 0 || width <= 0 || targetHeight <= 0 || targetWidth <= 0) {
            throw new IllegalArgumentException("image and target sizes must be positive");
        }
        int cropHeight;
        int cropWidth;
        if ((long) width * targetHeight > (long) targetWidth * height) {
            cropHeight = height;
            cropWidth = (int) Math.max(1, Math.rint((double) ((long) height * targetWidth) / targetHeight));
        } else {
            cropWidth = width;
            cropHeight = (int) Math.max(1, Math.rint((double) ((long) width * targetHeight) / targetWidth));
        }
        return new CropBox((height - cropHeight) / 2, (width - cropWidth) / 2, cropHeight, cropWidth);
    }

    /** Allocating form of {@link #centerCropResize(int[], int, int, int, int, byte[])}. */
    public static byte[] centerCropResize(int[] argb, int height, int width, int targetHeight, int targetWidth) {
        byte[] rgb = new byte[targetHeight * targetWidth * 3];
        centerCropResize(argb, height, width, targetHeight, targetWidth, rgb);
        return rgb;
    }

    /**
     * Centre-crops {@code argb} (height x width pixels {@code 0xAARRGGBB}, row-major, alpha ignored)
     * to the target aspect and resizes it into {@code rgb} (targetHeight x targetWidth x 3 bytes).
     */
    public static void centerCropResize(int[] argb, int height, int width, int targetHeight, int targetWidth,
            byte[] rgb) {
        CropBox box = centerCropBox(height, width, targetHeight, targetWidth);
        if (argb.length != height * width) {
            throw new IllegalArgumentException("argb has " + argb.length + " pixels, expected "
                    + height + " x " + width);
        }
        if (rgb.length != targetHeight * targetWidth * 3) {
            throw new IllegalArgumentException("rgb must hold targetHeight x targetWidth x 3 bytes");
        }
        Axis xs = new Axis(box.width, targetWidth);
        Axis ys = new Axis(box.height, targetHeight);
        int out = 0;
        for (int dy = 0; dy < targetHeight; dy++) {
            int row0 = (box.top + ys.index[dy]) * width + box.left;
            int row1 = (box.top + ys.index[dy] + ys.step[dy]) * width + box.left;
            float wy = ys.weight[dy];
            for (int dx = 0; dx < targetWidth; dx++) {
                int x0 = xs.index[dx];
                int x1 = x0 + xs.step[dx];
                float wx = xs.weight[dx];
                int p00 = argb[row0 + x0];
                int p01 = argb[row0 + x1];
                int p10 = argb[row1 + x0];
                int p11 = argb[row1 + x1];
                for (int shift = 16; shift >= 0; shift -= 8) {
                    float top = lerp((p00 >> shift) & 0xFF, (p01 >> shift) & 0xFF, wx);
                    float bottom = lerp((p10 >> shift) & 0xFF, (p11 >> shift) & 0xFF, wx);
                    rgb[out++] = (byte) (int) (lerp(top, bottom, wy) + 0.5f);
                }
            }
        }
    }

    private static float lerp(float a, float b, float t) {
        return a + (b - a) * t;
    }

    /**
     * Source positions along one axis, as OpenCV computes them: {@code x = (d + 0.5) * scale - 0.5},
     * index {@code floor(x)}, weight {@code x - floor(x)} of the next pixel, clamped to the edges.
     */
    private static final class Axis {
        final int[] index;
        final int[] step; // 1 when the next pixel is used, 0 at the edges
        final float[] weight;

        Axis(int source, int target) {
            index = new int[target];
            step = new int[target];
            weight = new float[target];
            double scale = 1.0 / ((double) target / source);
            for (int d = 0; d < target; d++) {
                float x = (float) ((d + 0.5) * scale - 0.5);
                int i = (int) Math.floor(x);
                float w = x - i;
                if (i < 0) {
                    i = 0;
                    w = 0;
                }
                if (i >= source - 1) {
                    i = source - 1;
                    w = 0;
                }
                index[d] = i;
                step[d] = w > 0 ? 1 : 0;
                weight[d] = w;
            }
        }
    }
}
