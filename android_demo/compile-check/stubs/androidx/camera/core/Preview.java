package androidx.camera.core;

import androidx.camera.core.resolutionselector.ResolutionSelector;

public final class Preview extends UseCase {
    private Preview() {}

    public void setSurfaceProvider(SurfaceProvider surfaceProvider) { throw new UnsupportedOperationException("compile-check stub"); }

    public interface SurfaceProvider {
    }

    public static final class Builder {
        public Builder() {}

        public Builder setResolutionSelector(ResolutionSelector resolutionSelector) { throw new UnsupportedOperationException("compile-check stub"); }

        public Preview build() { throw new UnsupportedOperationException("compile-check stub"); }
    }
}
