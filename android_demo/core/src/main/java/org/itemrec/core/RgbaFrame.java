package org.itemrec.core;

import java.nio.Buffer;
import java.nio.ByteBuffer;

/**
 * A camera frame as CameraX's RGBA_8888 image analysis delivers it: bytes R, G, B, A per pixel,
 * rows {@code rowStride} bytes apart, in the sensor's orientation, plus the clockwise rotation
 * that makes it upright ({@code ImageInfo.getRotationDegrees()}).
 */
public final class RgbaFrame {
    private static final int PIXEL_STRIDE = 4;

    private final ByteBuffer pixels;
    private final int width;
    private final int height;
    private final int rowStride;
    private final int rotation;

    /** @throws IllegalArgumentException for a pixel stride other than 4, a short buffer or a rotation not a multiple of 90 */
    public RgbaFrame(ByteBuffer pixels, int width, int height, int rowStride, int pixelStride, int rotationDegrees) {
        if (width <= 0 || height <= 0 || pixelStride != PIXEL_STRIDE || rowStride < width * PIXEL_STRIDE) {
            throw new IllegalArgumentException("expected RGBA_8888 (pixel stride 4, row stride >= 4 x width), got "
                    + width + "x" + height + ", row stride " + rowStride + ", pixel stride " + pixelStride);
        }
        if ((long) (height - 1) * rowStride + (long) width * PIXEL_STRIDE > pixels.capacity()) {
            throw new IllegalArgumentException("buffer of " + pixels.capacity() + " bytes is too small for "
                    + width + "x" + height + " with row stride " + rowStride);
        }
        if (rotationDegrees % 90 != 0) {
            throw new IllegalArgumentException("rotation must be a multiple of 90 degrees, got " + rotationDegrees);
        }
        this.pixels = pixels;
        this.width = width;
        this.height = height;
        this.rowStride = rowStride;
        this.rotation = ((rotationDegrees % 360) + 360) % 360;
    }

    public int uprightWidth() {
        return rotation % 180 == 0 ? width : height;
    }

    public int uprightHeight() {
        return rotation % 180 == 0 ? height : width;
    }

    /** The upright frame as {@code 0xAARRGGBB} pixels, uprightHeight x uprightWidth, row-major, into {@code argb}. */
    public void toUprightArgb(int[] argb) {
        if (argb.length != width * height) {
            throw new IllegalArgumentException("argb must hold " + width + " x " + height + " pixels");
        }
        ByteBuffer view = pixels.duplicate();
        Buffer positioned = view; // Buffer.position(int): the ByteBuffer override is missing before Java 9 / on old Android
        byte[] row = new byte[width * PIXEL_STRIDE];
        for (int y = 0; y < height; y++) {
            positioned.position(y * rowStride);
            view.get(row);
            for (int x = 0, k = 0; x < width; x++, k += PIXEL_STRIDE) {
                argb[uprightIndex(y, x)] = (row[k + 3] & 0xFF) << 24 | (row[k] & 0xFF) << 16
                        | (row[k + 1] & 0xFF) << 8 | (row[k + 2] & 0xFF);
            }
        }
    }

    /** Where sensor pixel (y, x) lands in the upright frame after a clockwise rotation. */
    private int uprightIndex(int y, int x) {
        switch (rotation) {
            case 90:
                return x * height + (height - 1 - y);
            case 180:
                return (height - 1 - y) * width + (width - 1 - x);
            case 270:
                return (width - 1 - x) * height + y;
            default:
                return y * width + x;
        }
    }
}
