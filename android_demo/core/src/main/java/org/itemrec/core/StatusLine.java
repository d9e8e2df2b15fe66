package org.itemrec.core;

import java.util.EnumMap;
import java.util.Map;

/**
 * What the status line shows instead of the recognition result: the most important notice still
 * raised. A later event never hides a more important notice (the camera-permission message used
 * to be wiped when the model finished loading, leaving a black screen with no text).
 */
public final class StatusLine {
    /** Notices, most important first. */
    public enum Notice {
        CAMERA_DENIED,
        NO_CAMERA,
        CAMERA_FAILED,
        MODEL_FAILED,
        LOADING,
        FRAME_FAILED
    }

    private final Map<Notice, String> raised = new EnumMap<>(Notice.class);

    /** Raises {@code notice} with a detail for the message (may be empty); replaces an earlier detail. */
    public void raise(Notice notice, String detail) {
        raised.put(notice, detail);
    }

    public void clear(Notice notice) {
        raised.remove(notice);
    }

    /** The most important raised notice, or null when the result may be shown. */
    public Notice top() {
        return raised.isEmpty() ? null : raised.keySet().iterator().next();
    }

    /** The detail given with {@code notice}, or null when it is not raised. */
    public String detail(Notice notice) {
        return raised.get(notice);
    }
}
