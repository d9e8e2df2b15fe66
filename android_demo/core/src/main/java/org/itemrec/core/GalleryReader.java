package org.itemrec.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.zip.CRC32;

/**
 * Reads {@code gallery.bin} version 1 (docs/gallery-format.md), refusing a wrong magic, an
 * unknown version, a size that does not match the counts, a CRC mismatch, an item index out of
 * range, invalid UTF-8 and duplicate codes with a {@link GalleryFormatException}.
 */
public final class GalleryReader {
    public static final int VERSION = 1;
    static final byte[] MAGIC = "IRGALLRY".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER_SIZE = 68;
    static final int CRC_SIZE = 4;

    private GalleryReader() {}

    public static Gallery read(Path path) throws IOException {
        return parse(Files.readAllBytes(path), path.toString());
    }

    /** Reads the whole stream (e.g. an Android asset) and parses it; does not close it. */
    public static Gallery read(InputStream in, String source) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        byte[] chunk = new byte[1 << 16];
        for (int n; (n = in.read(chunk)) != -1; ) {
            bytes.write(chunk, 0, n);
        }
        return parse(bytes.toByteArray(), source);
    }

    public static Gallery parse(byte[] data, String source) throws GalleryFormatException {
        if (data.length < HEADER_SIZE + CRC_SIZE) {
            throw new GalleryFormatException(source, "truncated: " + data.length
                    + " bytes, shorter than the " + HEADER_SIZE
                    + "-byte header and the CRC");
        }
        ByteBuffer buf = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        if (!Arrays.equals(Arrays.copyOfRange(data, 0, 8), MAGIC)) {
            throw new GalleryFormatException(source, "bad magic, expected IRGALLRY: not an itemrec gallery.bin");
        }
        long version = Integer.toUnsignedLong(buf.getInt(8));
        if (version != VERSION) {
            throw new GalleryFormatException(source, "unsupported format version " + version
                    + ", this reader knows " + VERSION);
        }
        long dim = Integer.toUnsignedLong(buf.getInt(12));
        long itemCount = Integer.toUnsignedLong(buf.getInt(16));
        long vectorCount = Integer.toUnsignedLong(buf.getInt(20));
        float threshold = buf.getFloat(24);
        long height = Integer.toUnsignedLong(buf.getInt(28));
        long width = Integer.toUnsignedLong(buf.getInt(32));
        byte[] fingerprint = Arrays.copyOfRange(data, 36, HEADER_SIZE);
        if (dim == 0 || height == 0 || width == 0) {
            throw new GalleryFormatException(source, "zero size in header (dim " + dim
                    + ", input " + height + "x" + width + ")");
        }

        int end = data.length - CRC_SIZE;
        int offset = HEADER_SIZE;
        List<byte[]> texts = new ArrayList<>();
        for (long i = 0; i < 2 * itemCount; i++) {
            if (offset + 2 > end) {
                throw new GalleryFormatException(source, "truncated: file ends inside item " + i / 2);
            }
            int length = buf.getShort(offset) & 0xFFFF;
            offset += 2;
            if (offset + length > end) {
                throw new GalleryFormatException(source, "truncated: file ends inside item " + i / 2);
            }
            texts.add(Arrays.copyOfRange(data, offset, offset + length));
            offset += length;
        }
        if (vectorCount > data.length || dim > data.length) {  // keeps the products below in range
            throw new GalleryFormatException(source, "truncated: " + vectorCount + " vectors of dim "
                    + dim + " cannot fit in " + data.length + " bytes");
        }
        long expected = offset + 4 * vectorCount + 4 * vectorCount * dim + CRC_SIZE;
        if (data.length < expected) {
            throw new GalleryFormatException(source, "truncated: the counts need " + expected
                    + " bytes, the file has " + data.length);
        }
        if (data.length > expected) {
            throw new GalleryFormatException(source, "size mismatch: the counts need " + expected
                    + " bytes, the file has " + data.length);
        }

        CRC32 crc = new CRC32();
        crc.update(data, 0, end);
        long stored = Integer.toUnsignedLong(buf.getInt(end));
        if (crc.getValue() != stored) {
            throw new GalleryFormatException(source, String.format(
                    "CRC mismatch (stored %08x, computed %08x): corrupt", stored, crc.getValue()));
        }

        int[] itemIndex = new int[(int) vectorCount];
        for (int v = 0; v < itemIndex.length; v++, offset += 4) {
            long item = Integer.toUnsignedLong(buf.getInt(offset));
            if (item >= itemCount) {
                throw new GalleryFormatException(source, "item index " + item
                        + " out of range (item_count " + itemCount + ")");
            }
            itemIndex[v] = (int) item;
        }
        float[] vectors = new float[(int) (vectorCount * dim)];
        for (int k = 0; k < vectors.length; k++, offset += 4) {
            vectors[k] = buf.getFloat(offset);
        }

        List<String> codes = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            (i % 2 == 0 ? codes : names).add(utf8(texts.get(i), source));
        }
        if (new HashSet<>(codes).size() != codes.size()) {
            throw new GalleryFormatException(source, "item codes are not unique");
        }
        return new Gallery((int) dim, codes, names, itemIndex, vectors, threshold,
                (int) height, (int) width, fingerprint);
    }

    private static String utf8(byte[] raw, String source) throws GalleryFormatException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new GalleryFormatException(source, "an item code or name is not valid UTF-8");
        }
    }
}
