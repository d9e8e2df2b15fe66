package org.itemrec.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Nearest-representative lookup: a query's score for an item is the best cosine similarity
 * (dot product of unit vectors) over that item's vectors; items rank by score, ties by index.
 */
public final class Matcher {
    private final Gallery gallery;

    public Matcher(Gallery gallery) {
        this.gallery = gallery;
    }

    public Gallery gallery() {
        return gallery;
    }

    /**
     * Per-item scores of {@code query} (L2-normalised here, see {@link Vectors#l2Normalize});
     * {@code -Infinity} for an item with no vectors, NaN for every item when the query has a NaN.
     */
    public float[] itemScores(float[] query) {
        if (query.length != gallery.dim()) {
            throw new IllegalArgumentException("query has " + query.length
                    + " values, the gallery's vectors " + gallery.dim());
        }
        float[] unit = Vectors.l2Normalize(query);
        float[] data = gallery.vectorData();
        float[] best = new float[gallery.itemCount()];
        Arrays.fill(best, Float.NEGATIVE_INFINITY);
        for (int v = 0; v < gallery.vectorCount(); v++) {
            float score = (float) Vectors.dot(unit, data, v * gallery.dim());
            int item = gallery.itemOf(v);
            if (score > best[item]) {
                best[item] = score;
            }
        }
        return best;
    }

    /**
     * The {@code k} best items, best first; items whose score is not finite (no vectors, or a NaN
     * query) never rank, as in Python's lookup, so there may be fewer than {@code k}.
     */
    public List<Match> topK(float[] query, int k) {
        if (k <= 0) {
            throw new IllegalArgumentException("k must be positive, got " + k);
        }
        float[] scores = itemScores(query);
        int[] top = new int[Math.min(k, scores.length)];
        int size = 0;
        for (int item = 0; item < scores.length; item++) {
            if (!Float.isFinite(scores[item])) {
                continue;
            }
            // Insertion into the sorted top list; a later item only displaces a strictly lower score.
            int pos = size;
            while (pos > 0 && scores[top[pos - 1]] < scores[item]) {
                pos--;
            }
            if (pos >= top.length) {
                continue;
            }
            int last = Math.min(size, top.length - 1);
            System.arraycopy(top, pos, top, pos + 1, last - pos);
            top[pos] = item;
            size = Math.min(size + 1, top.length);
        }
        List<Match> matches = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            int item = top[i];
            matches.add(new Match(item, gallery.code(item), gallery.name(item), scores[item]));
        }
        return matches;
    }

    /** Top-k plus the threshold decision ("unknown item" below the gallery's threshold). */
    public Recognition recognize(float[] query, int k) {
        return new Recognition(topK(query, k), gallery.threshold());
    }
}
