package org.itemrec.core;

import java.io.IOException;

/** A {@code gallery.bin} breaks the format (docs/gallery-format.md); the message names the file. */
public final class GalleryFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public GalleryFormatException(String source, String problem) {
        super(source + ": " + problem);
    }
}
