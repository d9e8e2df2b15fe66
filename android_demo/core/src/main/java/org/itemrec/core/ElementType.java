package org.itemrec.core;

/** Element types of a model tensor that the demo can feed or read. */
public enum ElementType {
    UINT8(1),
    INT8(1),
    FLOAT32(4);

    /** Bytes per element. */
    public final int bytes;

    ElementType(int bytes) {
        this.bytes = bytes;
    }
}
