package org.itemrec.core;

import java.util.Collections;
import java.util.List;

/**
 * The answer for one query: the top-k items, best first, and whether the best one clears the
 * gallery's threshold. Below it (or with an empty gallery) the query is an unknown item.
 */
public final class Recognition {
    public static final String UNKNOWN = "unknown item";

    private final List<Match> matches;
    private final boolean known;

    public Recognition(List<Match> matches, float threshold) {
        this.matches = Collections.unmodifiableList(matches);
        this.known = !matches.isEmpty()
                && (Float.isNaN(threshold) || matches.get(0).score() >= threshold);
    }

    /** The top-k items, best first (shown even when the query is unknown). */
    public List<Match> matches() {
        return matches;
    }

    public boolean isKnown() {
        return known;
    }

    /** The best match when known, otherwise null. */
    public Match best() {
        return known ? matches.get(0) : null;
    }

    /** The best item's code, or {@link #UNKNOWN}. */
    public String label() {
        return known ? matches.get(0).code() : UNKNOWN;
    }
}
