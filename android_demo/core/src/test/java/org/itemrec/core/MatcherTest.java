package org.itemrec.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class MatcherTest {
    /** Scores agree with Python's float64 reference within this (float32 vectors, double sums). */
    static final double SCORE_TOLERANCE = 1e-5;

    @Test
    public void topThreeAndScoresAgreeWithPython() throws Exception {
        Matcher matcher = new Matcher(GalleryReader.read(Golden.path("gallery.bin")));
        int dim = matcher.gallery().dim();
        float[] queries = Golden.floats("queries.f32");
        List<Map<String, String>> rows = Golden.tsv("matches.tsv");
        double worst = 0;
        for (Map<String, String> row : rows) {
            int q = Integer.parseInt(row.get("query"));
            int rank = Integer.parseInt(row.get("rank"));
            List<Match> top = matcher.topK(Arrays.copyOfRange(queries, q * dim, (q + 1) * dim), 3);
            assertEquals("query " + q, 3, top.size());
            Match match = top.get(rank - 1);
            assertEquals("query " + q + " rank " + rank, Integer.parseInt(row.get("item")), match.item());
            assertEquals(row.get("code"), match.code());
            double diff = Math.abs(match.score() - Double.parseDouble(row.get("score")));
            worst = Math.max(worst, diff);
            assertEquals(Double.parseDouble(row.get("score")), match.score(), SCORE_TOLERANCE);
        }
        assertEquals(6 * 3 + 3, rows.size()); // 6 regular queries, then the zero query (items 0-2, score 0)
        System.out.printf("matcher vs python: %d ranked scores, max abs diff %.2e%n", rows.size(), worst);
    }

    @Test
    public void unknownBelowThresholdAgreesWithPython() throws Exception {
        Matcher matcher = new Matcher(GalleryReader.read(Golden.path("gallery.bin")));
        int dim = matcher.gallery().dim();
        float[] queries = Golden.floats("queries.f32");
        int unknown = 0;
        for (Map<String, String> row : Golden.tsv("decisions.tsv")) {
            int q = Integer.parseInt(row.get("query"));
            Recognition result = matcher.recognize(Arrays.copyOfRange(queries, q * dim, (q + 1) * dim), 3);
            String expected = row.get("result");
            assertEquals("query " + q, expected.equals("unknown") ? Recognition.UNKNOWN : expected, result.label());
            if (row.get("best_score").equals("none")) { // the NaN query: no item ranks at all
                assertTrue("query " + q, result.matches().isEmpty());
            } else {
                assertEquals(Double.parseDouble(row.get("best_score")), result.matches().get(0).score(), SCORE_TOLERANCE);
            }
            unknown += result.isKnown() ? 0 : 1;
        }
        assertEquals(3, unknown); // one random query, the zero query and the NaN query
    }

    /** Items: a has (1,0) and (0,1); b has (0.6,0.8); c has no vector; d has (-1,0). */
    private static Gallery handGallery(float threshold) {
        return new Gallery(2, Arrays.asList("a", "b", "c", "d"), Arrays.asList("A", "B", "C", "D"),
                new int[] {0, 0, 1, 3}, new float[] {1, 0, 0, 1, 0.6f, 0.8f, -1, 0},
                threshold, 8, 8, new byte[32]);
    }

    @Test
    public void anItemScoresItsBestVectorAndItemsWithoutVectorsNeverRank() {
        Matcher matcher = new Matcher(handGallery(0.9f));
        // query (3,4) -> unit (0.6,0.8): a = max(0.6, 0.8) = 0.8, b = 1.0, d = -0.6
        float[] scores = matcher.itemScores(new float[] {3, 4});
        assertEquals(0.8f, scores[0], 1e-6f);
        assertEquals(1.0f, scores[1], 1e-6f);
        assertEquals(Float.NEGATIVE_INFINITY, scores[2], 0f);
        assertEquals(-0.6f, scores[3], 1e-6f);
        List<Match> top = matcher.topK(new float[] {3, 4}, 10);
        assertEquals(3, top.size());
        assertEquals(Arrays.asList("b", "a", "d"), Arrays.asList(top.get(0).code(), top.get(1).code(),
                top.get(2).code()));
        assertEquals("B", top.get(0).name());
    }

    @Test
    public void tiesKeepTheLowerItemIndexFirst() {
        // Vectors (0,1) -> z, (1,0) -> y, (0,1) -> x; query (2,0) -> unit (1,0): y scores 1, x and z
        // tie at 0, and the tie keeps the lower item index (x before z).
        Gallery tie = new Gallery(2, Arrays.asList("x", "y", "z"), Arrays.asList("", "", ""),
                new int[] {2, 1, 0}, new float[] {0, 1, 1, 0, 0, 1}, Float.NaN, 8, 8, new byte[32]);
        List<Match> top = new Matcher(tie).topK(new float[] {2, 0}, 3);
        assertEquals(Arrays.asList(1, 0, 2), Arrays.asList(top.get(0).item(), top.get(1).item(), top.get(2).item()));
        assertEquals(0f, top.get(1).score(), 0f);
        assertEquals(0f, top.get(2).score(), 0f);
        assertEquals(1, new Matcher(tie).topK(new float[] {2, 0}, 1).size());
    }

    @Test
    public void thresholdDecidesUnknownAndNanMeansAlwaysKnown() {
        float[] query = {3, 4};
        Recognition strict = new Matcher(handGallery(1.01f)).recognize(query, 3);
        assertFalse(strict.isKnown());
        assertNull(strict.best());
        assertEquals(Recognition.UNKNOWN, strict.label());
        assertEquals("b", strict.matches().get(0).code()); // still shown as candidates
        Recognition atThreshold = new Matcher(handGallery(1.0f)).recognize(new float[] {0.6f, 0.8f}, 3);
        assertTrue(atThreshold.isKnown()); // score >= threshold is known
        Recognition none = new Matcher(handGallery(Float.NaN)).recognize(new float[] {-1, 0}, 3);
        assertTrue(none.isKnown());
        assertEquals("d", none.label());
    }

    @Test
    public void refusesAQueryOfTheWrongSizeOrABadK() {
        Matcher matcher = new Matcher(handGallery(0.5f));
        assertThrows(IllegalArgumentException.class, () -> matcher.topK(new float[] {1, 2, 3}, 3));
        assertThrows(IllegalArgumentException.class, () -> matcher.topK(new float[] {1, 0}, 0));
    }

    /** A zero embedding scores 0 everywhere and a NaN one ranks nothing: unknown, never an exception. */
    @Test
    public void degenerateQueriesAreUnknownItems() {
        Matcher matcher = new Matcher(handGallery(0.5f));
        Recognition zero = matcher.recognize(new float[] {0, 0}, 3);
        assertEquals(Arrays.asList("a", "b", "d"), Arrays.asList(zero.matches().get(0).code(),
                zero.matches().get(1).code(), zero.matches().get(2).code()));
        assertEquals(0f, zero.matches().get(0).score(), 0f);
        assertFalse(zero.isKnown());
        Recognition nan = matcher.recognize(new float[] {Float.NaN, 1}, 3);
        assertTrue(nan.matches().isEmpty());
        assertFalse(nan.isKnown());
    }
}
