package org.itemrec.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import org.itemrec.core.StatusLine.Notice;
import org.junit.Test;

public class StatusLineTest {
    /** The review's black screen: permission denied, then the model finishes loading. */
    @Test
    public void aLoadedModelNeverHidesTheDeniedPermission() {
        StatusLine status = new StatusLine();
        status.raise(Notice.LOADING, "");
        status.raise(Notice.CAMERA_DENIED, "");
        status.clear(Notice.LOADING); // the model has loaded
        assertEquals(Notice.CAMERA_DENIED, status.top());
    }

    @Test
    public void loadingShowsUntilTheModelIsReadyThenResults() {
        StatusLine status = new StatusLine();
        status.raise(Notice.LOADING, "");
        assertEquals(Notice.LOADING, status.top());
        status.clear(Notice.LOADING);
        assertNull(status.top());
    }

    @Test
    public void aFailedFrameShowsUntilTheNextGoodOne() {
        StatusLine status = new StatusLine();
        status.raise(Notice.FRAME_FAILED, "zero-size frame");
        assertEquals(Notice.FRAME_FAILED, status.top());
        assertEquals("zero-size frame", status.detail(Notice.FRAME_FAILED));
        status.clear(Notice.FRAME_FAILED);
        assertNull(status.top());
        assertNull(status.detail(Notice.FRAME_FAILED));
    }

    @Test
    public void moreImportantNoticesWin() {
        StatusLine status = new StatusLine();
        status.raise(Notice.FRAME_FAILED, "x");
        status.raise(Notice.MODEL_FAILED, "bad gallery");
        assertEquals(Notice.MODEL_FAILED, status.top());
        status.raise(Notice.NO_CAMERA, "");
        assertEquals(Notice.NO_CAMERA, status.top());
        status.clear(Notice.NO_CAMERA);
        assertEquals(Notice.MODEL_FAILED, status.top());
    }
}
