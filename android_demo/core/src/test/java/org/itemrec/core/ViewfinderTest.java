package org.itemrec.core;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class ViewfinderTest {
    private static final float EPS = 1e-3f;

    @Test
    public void portraitPhoneShowsTheSquareAcrossTheFullWidth() {
        // 480x640 upright frame fitted into 1080x2400: scale min(2.25, 3.75) = 2.25, shown 1080x1440
        // from y = 480; the model's 480x480 crop starts at frame row 80 -> y = 480 + 180 = 660.
        assertRect(0, 660, 1080, 1740, Viewfinder.modelCrop(480, 640, 224, 224, 1080, 2400));
    }

    @Test
    public void landscapeViewLetterboxesLeftAndRight() {
        // scale min(2400/480, 1080/640) = 1.6875: frame shown 810x1080 from x = 795; crop 480x480 at
        // row 80 -> top 135, side 810.
        assertRect(795, 135, 1605, 945, Viewfinder.modelCrop(480, 640, 224, 224, 2400, 1080));
    }

    @Test
    public void aWideModelCropsRowsOfAPortraitFrame() {
        // model 24x32 (aspect 4:3) on 480x640: crop 480 wide x 360 high from row 140; view 480x640 at scale 1.
        assertRect(0, 140, 480, 500, Viewfinder.modelCrop(480, 640, 24, 32, 480, 640));
    }

    private static void assertRect(float left, float top, float right, float bottom, ScreenRect rect) {
        assertEquals("left", left, rect.left, EPS);
        assertEquals("top", top, rect.top, EPS);
        assertEquals("right", right, rect.right, EPS);
        assertEquals("bottom", bottom, rect.bottom, EPS);
    }
}
