package org.itemrec.core;

/** One ranked item: its index in the gallery, code, name and cosine score (best of its vectors). */
public final class Match {
    private final int item;
    private final String code;
    private final String name;
    private final float score;

    public Match(int item, String code, String name, float score) {
        this.item = item;
        this.code = code;
        this.name = name;
        this.score = score;
    }

    public int item() {
        return item;
    }

    public String code() {
        return code;
    }

    public String name() {
        return name;
    }

    public float score() {
        return score;
    }

    @Override
    public String toString() {
        return String.format("%s %s (%.3f)", code, name, score);
    }
}
