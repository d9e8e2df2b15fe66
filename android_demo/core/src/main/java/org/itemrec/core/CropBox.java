package org.itemrec.core;

/** A rectangle inside an image: top-left corner and size, in pixels. */
public final class CropBox {
    public final int top;
    public final int left;
    public final int height;
    public final int width;

    public CropBox(int top, int left, int height, int width) {
        this.top = top;
        this.left = left;
        this.height = height;
        this.width = width;
    }

    @Override
    public String toString() {
        return "CropBox(top=" + top + ", left=" + left + ", height=" + height + ", width=" + width + ")";
    }
}
