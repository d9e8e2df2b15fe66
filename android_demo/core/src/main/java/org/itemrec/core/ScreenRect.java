package org.itemrec.core;

/** A rectangle on screen in pixels (floats, as Android's {@code RectF}). */
public final class ScreenRect {
    public final float left;
    public final float top;
    public final float right;
    public final float bottom;

    public ScreenRect(float left, float top, float right, float bottom) {
        this.left = left;
        this.top = top;
        this.right = right;
        this.bottom = bottom;
    }

    @Override
    public String toString() {
        return "ScreenRect(" + left + ", " + top + ", " + right + ", " + bottom + ")";
    }
}
