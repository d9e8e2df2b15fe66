package org.itemrec.core;

import java.io.IOException;

/** The model does not fit the demo or the gallery (tensor shape or type, input size, fingerprint). */
public final class ModelMismatchException extends IOException {
    private static final long serialVersionUID = 1L;

    public ModelMismatchException(String problem) {
        super(problem);
    }
}
