package androidx.camera.core;

public class CameraInfoUnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    public CameraInfoUnavailableException(String message) {
        super(message);
    }
}
