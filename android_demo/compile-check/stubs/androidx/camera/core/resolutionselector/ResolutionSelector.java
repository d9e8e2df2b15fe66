package androidx.camera.core.resolutionselector;

public final class ResolutionSelector {
    private ResolutionSelector() {}

    public static final class Builder {
        public Builder() {}

        public Builder setAspectRatioStrategy(AspectRatioStrategy aspectRatioStrategy) { throw new UnsupportedOperationException("compile-check stub"); }

        public Builder setResolutionStrategy(ResolutionStrategy resolutionStrategy) { throw new UnsupportedOperationException("compile-check stub"); }

        public ResolutionSelector build() { throw new UnsupportedOperationException("compile-check stub"); }
    }
}
