package org.itemrec.core;

/**
 * Where the part of the frame that the model sees appears on screen. The preview shows the whole
 * upright frame scaled to fit the view and centred (PreviewView's FIT_CENTER, so nothing the
 * model sees is cut off); the model sees {@link ImageGeometry#centerCropBox} of that frame.
 */
public final class Viewfinder {
    private Viewfinder() {}

    /** The model's crop of an upright {@code frameWidth x frameHeight} frame, in view pixels. */
    public static ScreenRect modelCrop(int frameWidth, int frameHeight, int modelHeight, int modelWidth,
            int viewWidth, int viewHeight) {
        if (viewWidth <= 0 || viewHeight <= 0) {
            throw new IllegalArgumentException("view size must be positive");
        }
        CropBox box = ImageGeometry.centerCropBox(frameHeight, frameWidth, modelHeight, modelWidth);
        float scale = Math.min((float) viewWidth / frameWidth, (float) viewHeight / frameHeight);
        float left = (viewWidth - frameWidth * scale) / 2 + box.left * scale;
        float top = (viewHeight - frameHeight * scale) / 2 + box.top * scale;
        return new ScreenRect(left, top, left + box.width * scale, top + box.height * scale);
    }
}
