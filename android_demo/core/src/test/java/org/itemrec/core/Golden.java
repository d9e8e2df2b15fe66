package org.itemrec.core;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The golden files written by scripts/make_android_golden.py (test resources, golden/). */
final class Golden {
    private Golden() {}

    static Path path(String name) {
        try {
            return Paths.get(Golden.class.getResource("/golden/" + name).toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalStateException("missing golden file " + name
                    + " (run scripts/make_android_golden.py)", e);
        }
    }

    static byte[] bytes(String name) throws IOException {
        return Files.readAllBytes(path(name));
    }

    /** Rows of a tab-separated file with a header line, as column name -> value. */
    static List<Map<String, String>> tsv(String name) throws IOException {
        List<String> lines = Files.readAllLines(path(name), StandardCharsets.UTF_8);
        String[] header = lines.get(0).split("\t", -1);
        List<Map<String, String>> rows = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] cells = line.split("\t", -1);
            Map<String, String> row = new LinkedHashMap<>();
            for (int i = 0; i < header.length; i++) {
                row.put(header[i], cells[i]);
            }
            rows.add(row);
        }
        return rows;
    }

    static float[] floats(String name) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(bytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[buf.remaining() / 4];
        buf.asFloatBuffer().get(values);
        return values;
    }

    static int[] ints(String name) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(bytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        int[] values = new int[buf.remaining() / 4];
        buf.asIntBuffer().get(values);
        return values;
    }
}
