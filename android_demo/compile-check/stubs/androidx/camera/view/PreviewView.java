package androidx.camera.view;

import android.content.Context;
import android.util.AttributeSet;
import android.widget.FrameLayout;
import androidx.camera.core.Preview;

public final class PreviewView extends FrameLayout {
    public PreviewView(Context context, AttributeSet attrs) {
        super(context, attrs);
    }

    public Preview.SurfaceProvider getSurfaceProvider() { throw new UnsupportedOperationException("compile-check stub"); }

    public void setScaleType(ScaleType scaleType) { throw new UnsupportedOperationException("compile-check stub"); }

    public enum ScaleType {
        FILL_START, FILL_CENTER, FILL_END, FIT_START, FIT_CENTER, FIT_END
    }
}
