package org.itemrec.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Map;
import java.util.zip.CRC32;
import org.junit.Test;

public class GalleryReaderTest {

    @Test
    public void readsTheGoldenGalleryWrittenByPython() throws Exception {
        Gallery gallery = GalleryReader.read(Golden.path("gallery.bin"));
        assertEquals(16, gallery.dim());
        assertEquals(6, gallery.itemCount());
        assertEquals(10, gallery.vectorCount());
        assertEquals(Arrays.asList("4006381333931", "5000112637922", "7610400010351",
                "4901085191238", "SKU-0005", "SKU-0006"), gallery.codes());
        assertEquals("Crème fraîche 200 g", gallery.name(2));
        assertEquals("緑茶 500 ml", gallery.name(3));
        assertEquals("", gallery.name(5));
        int[] expectedItems = {0, 0, 1, 2, 2, 2, 3, 4, 4, 5};
        for (int v = 0; v < expectedItems.length; v++) {
            assertEquals(expectedItems[v], gallery.itemOf(v));
            assertEquals(1.0, Vectors.dot(gallery.vector(v), gallery.vector(v), 0), 1e-6);
        }
        assertEquals(0.6f, gallery.threshold(), 0f);
        assertTrue(gallery.hasThreshold());
        assertEquals(24, gallery.inputHeight());
        assertEquals(32, gallery.inputWidth());
        byte[] sha = MessageDigest.getInstance("SHA-256")
                .digest("itemrec golden model".getBytes(StandardCharsets.US_ASCII));
        StringBuilder hex = new StringBuilder();
        for (byte b : sha) {
            hex.append(String.format("%02x", b & 0xFF));
        }
        assertEquals(hex.toString(), gallery.fingerprintHex());
    }

    @Test
    public void readsFromAStreamAsFromAFile() throws Exception {
        byte[] data = Golden.bytes("gallery.bin");
        Gallery fromStream = GalleryReader.read(new ByteArrayInputStream(data), "asset gallery.bin");
        Gallery fromFile = GalleryReader.read(Golden.path("gallery.bin"));
        assertEquals(fromFile.codes(), fromStream.codes());
        for (int v = 0; v < fromFile.vectorCount(); v++) {
            assertArrayEquals(fromFile.vector(v), fromStream.vector(v), 0f);
        }
    }

    /** Python wrote one broken file per rule and the word its error must contain. */
    @Test
    public void refusesEachGoldenInvalidFileForTheSameReasonAsPython() throws Exception {
        int checked = 0;
        for (Map<String, String> row : Golden.tsv("invalid.tsv")) {
            String file = row.get("file");
            GalleryFormatException error = assertThrows(GalleryFormatException.class,
                    () -> GalleryReader.read(Golden.path("invalid/" + file)));
            String message = error.getMessage();
            assertTrue(file + ": " + message, message.contains(row.get("keyword")));
            assertTrue(file + ": " + message, message.contains(file));
            checked++;
        }
        assertEquals(7, checked);
    }

    @Test
    public void readsANanThresholdAsNone() throws Exception {
        byte[] data = Golden.bytes("gallery.bin");
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putFloat(24, Float.NaN);
        Gallery gallery = GalleryReader.parse(withCrc(data), "nan.bin");
        assertFalse(gallery.hasThreshold());
    }

    @Test
    public void refusesInvalidUtf8AndDuplicateCodes() throws Exception {
        byte[] utf8 = Golden.bytes("gallery.bin");
        utf8[70] = (byte) 0xFF; // first byte of the first code
        assertMessage("not valid UTF-8", utf8);

        byte[] duplicate = Golden.bytes("gallery.bin");
        byte[] first = "4006381333931".getBytes(StandardCharsets.US_ASCII);
        int second = indexOf(duplicate, "5000112637922".getBytes(StandardCharsets.US_ASCII));
        System.arraycopy(first, 0, duplicate, second, first.length);
        assertMessage("not unique", duplicate);
    }

    @Test
    public void refusesAHeaderWithCountsTooLargeToFit() throws Exception {
        byte[] data = Golden.bytes("gallery.bin");
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putInt(20, -1); // 4294967295 vectors
        assertMessage("truncated", data);
    }

    private static void assertMessage(String expected, byte[] bodyWithStaleCrc) {
        GalleryFormatException error = assertThrows(GalleryFormatException.class,
                () -> GalleryReader.parse(withCrc(bodyWithStaleCrc), "edited.bin"));
        assertTrue(error.getMessage(), error.getMessage().startsWith("edited.bin: "));
        assertTrue(error.getMessage(), error.getMessage().contains(expected));
    }

    /** Recomputes the trailing CRC so that only the edit under test is wrong. */
    private static byte[] withCrc(byte[] data) {
        CRC32 crc = new CRC32();
        crc.update(data, 0, data.length - 4);
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putInt(data.length - 4, (int) crc.getValue());
        return data;
    }

    private static int indexOf(byte[] data, byte[] part) {
        for (int i = 0; i + part.length <= data.length; i++) {
            if (Arrays.equals(Arrays.copyOfRange(data, i, i + part.length), part)) {
                return i;
            }
        }
        throw new AssertionError("not found");
    }
}
