package androidx.camera.core.resolutionselector;

public final class AspectRatioStrategy {
    public static final AspectRatioStrategy RATIO_4_3_FALLBACK_AUTO_STRATEGY = new AspectRatioStrategy();

    private AspectRatioStrategy() {}
}
