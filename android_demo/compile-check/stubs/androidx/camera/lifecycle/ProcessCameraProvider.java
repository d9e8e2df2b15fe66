package androidx.camera.lifecycle;

import android.content.Context;
import androidx.camera.core.Camera;
import androidx.camera.core.CameraInfoUnavailableException;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.UseCase;
import androidx.lifecycle.LifecycleOwner;
import com.google.common.util.concurrent.ListenableFuture;

public final class ProcessCameraProvider {
    private ProcessCameraProvider() {}

    public static ListenableFuture<ProcessCameraProvider> getInstance(Context context) { throw new UnsupportedOperationException("compile-check stub"); }

    public boolean hasCamera(CameraSelector cameraSelector) throws CameraInfoUnavailableException { throw new UnsupportedOperationException("compile-check stub"); }

    public void unbindAll() { throw new UnsupportedOperationException("compile-check stub"); }

    public Camera bindToLifecycle(LifecycleOwner lifecycleOwner, CameraSelector cameraSelector,
            UseCase... useCases) { throw new UnsupportedOperationException("compile-check stub"); }
}
