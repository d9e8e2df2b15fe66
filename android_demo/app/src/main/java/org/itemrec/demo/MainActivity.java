package org.itemrec.demo;

import android.Manifest;
import android.content.pm.PackageManager;
import android.os.Bundle;
import android.os.SystemClock;
import android.util.Log;
import android.util.Size;
import android.widget.TextView;

import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.camera.core.CameraInfoUnavailableException;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.ImageAnalysis;
import androidx.camera.core.ImageProxy;
import androidx.camera.core.Preview;
import androidx.camera.core.resolutionselector.AspectRatioStrategy;
import androidx.camera.core.resolutionselector.ResolutionSelector;
import androidx.camera.core.resolutionselector.ResolutionStrategy;
import androidx.camera.lifecycle.ProcessCameraProvider;
import androidx.camera.view.PreviewView;
import androidx.core.content.ContextCompat;

import com.google.common.util.concurrent.ListenableFuture;

import java.io.IOException;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.itemrec.core.FrameRecognizer;
import org.itemrec.core.GalleryFormatException;
import org.itemrec.core.Match;
import org.itemrec.core.Recognition;
import org.itemrec.core.RgbaFrame;
import org.itemrec.core.StatusLine;
import org.itemrec.core.StatusLine.Notice;

/** Camera preview with the model's square marked; every analysed frame is recognised and its top-3 shown. */
public class MainActivity extends AppCompatActivity {
    private static final String TAG = "itemrec";
    private static final String MODEL_ASSET = "model.tflite";
    private static final String GALLERY_ASSET = "gallery.bin";
    private static final int THREADS = 4;
    /** Analysis frames of 640x480 (4:3 like the preview, so both show the same field of view). */
    private static final Size ANALYSIS_SIZE = new Size(640, 480);

    /** Loading and analysis share this one thread, so the recognizer is never used concurrently. */
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final StatusLine status = new StatusLine();
    private volatile FrameRecognizer recognizer;

    private PreviewView preview;
    private ModelSquareOverlay overlay;
    private TextView label;
    private TextView top3;
    private TextView timing;

    private final ActivityResultLauncher<String> cameraPermission = registerForActivityResult(
            new ActivityResultContracts.RequestPermission(), granted -> {
                if (granted) {
                    startCamera();
                } else {
                    update(Notice.CAMERA_DENIED, "");
                }
            });

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        // Casts, not the generic findViewById of API 26+: compile-check/ compiles against API 23.
        preview = (PreviewView) findViewById(R.id.preview);
        preview.setScaleType(PreviewView.ScaleType.FIT_CENTER); // the whole frame: the model's square is inside
        overlay = (ModelSquareOverlay) findViewById(R.id.model_square);
        label = (TextView) findViewById(R.id.label);
        top3 = (TextView) findViewById(R.id.top3);
        timing = (TextView) findViewById(R.id.timing);

        update(Notice.LOADING, "");
        worker.execute(this::loadRecognizer);
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA)
                == PackageManager.PERMISSION_GRANTED) {
            startCamera();
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA);
        }
    }

    private void loadRecognizer() {
        try {
            recognizer = RecognizerLoader.load(this, MODEL_ASSET, GALLERY_ASSET, THREADS);
            runOnUiThread(() -> {
                status.clear(Notice.LOADING);
                render();
            });
        } catch (GalleryFormatException e) {
            fail(Notice.MODEL_FAILED, getString(R.string.bad_gallery, e.getMessage()));
        } catch (IOException | RuntimeException e) { // LiteRT throws IllegalArgumentException for a bad model
            fail(Notice.MODEL_FAILED, getString(R.string.model_failed, e.getMessage()));
        }
    }

    private void startCamera() {
        ListenableFuture<ProcessCameraProvider> future = ProcessCameraProvider.getInstance(this);
        future.addListener(() -> {
            try {
                bind(future.get());
            } catch (ExecutionException | InterruptedException | CameraInfoUnavailableException
                    | IllegalArgumentException | IllegalStateException e) {
                fail(Notice.CAMERA_FAILED, getString(R.string.camera_failed, e.getMessage()));
            }
        }, ContextCompat.getMainExecutor(this));
    }

    /** Binds preview and analysis to the back camera, else the front one (the manifest asks for any). */
    private void bind(ProcessCameraProvider provider) throws CameraInfoUnavailableException {
        CameraSelector camera = provider.hasCamera(CameraSelector.DEFAULT_BACK_CAMERA)
                ? CameraSelector.DEFAULT_BACK_CAMERA : CameraSelector.DEFAULT_FRONT_CAMERA;
        if (!provider.hasCamera(camera)) {
            update(Notice.NO_CAMERA, "");
            return;
        }
        AspectRatioStrategy fourThree = AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY;
        Preview previewUseCase = new Preview.Builder()
                .setResolutionSelector(new ResolutionSelector.Builder().setAspectRatioStrategy(fourThree).build())
                .build();
        previewUseCase.setSurfaceProvider(preview.getSurfaceProvider());
        ImageAnalysis analysis = new ImageAnalysis.Builder()
                .setResolutionSelector(new ResolutionSelector.Builder()
                        .setAspectRatioStrategy(fourThree)
                        .setResolutionStrategy(new ResolutionStrategy(ANALYSIS_SIZE,
                                ResolutionStrategy.FALLBACK_RULE_CLOSEST_HIGHER_THEN_LOWER))
                        .build())
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build();
        analysis.setAnalyzer(worker, this::analyze);
        provider.unbindAll();
        provider.bindToLifecycle(this, camera, previewUseCase, analysis); // IllegalArgumentException: caught above
    }

    /**
     * Runs on the worker thread for the latest frame only (older frames are dropped). Any runtime
     * exception is shown and the next frame tried: an uncaught one here would crash the app.
     */
    private void analyze(ImageProxy image) {
        long start = SystemClock.elapsedRealtimeNanos();
        FrameRecognizer current = recognizer;
        try {
            if (current == null) {
                return;
            }
            ImageProxy.PlaneProxy plane = image.getPlanes()[0];
            RgbaFrame frame = new RgbaFrame(plane.getBuffer(), image.getWidth(), image.getHeight(),
                    plane.getRowStride(), plane.getPixelStride(), image.getImageInfo().getRotationDegrees());
            Recognition result = current.recognize(frame);
            long frameMillis = (SystemClock.elapsedRealtimeNanos() - start) / 1_000_000;
            long modelMillis = current.lastModelNanos() / 1_000_000;
            int width = frame.uprightWidth();
            int height = frame.uprightHeight();
            runOnUiThread(() -> {
                overlay.show(width, height, current.inputHeight(), current.inputWidth());
                status.clear(Notice.FRAME_FAILED);
                show(result, frameMillis, modelMillis);
            });
        } catch (RuntimeException e) {
            Log.e(TAG, "frame failed", e);
            fail(Notice.FRAME_FAILED, getString(R.string.frame_failed, e.getMessage()));
        } finally {
            image.close();
        }
    }

    private void show(Recognition result, long frameMillis, long modelMillis) {
        StringBuilder lines = new StringBuilder();
        int rank = 1;
        for (Match match : result.matches()) {
            lines.append(String.format(Locale.ROOT, "%d. %-14s %.3f  %s%n", rank++, match.code(), match.score(),
                    match.name()));
        }
        top3.setText(lines.toString().trim());
        timing.setText(getString(R.string.timing, frameMillis, modelMillis));
        Match best = result.best();
        render(best != null ? best.code() + "  " + best.name() : getString(R.string.unknown_item));
    }

    /** Raises a notice from any thread and shows what the status line now says. */
    private void update(Notice notice, String detail) {
        runOnUiThread(() -> {
            status.raise(notice, detail);
            render();
        });
    }

    private void fail(Notice notice, String message) {
        Log.e(TAG, message);
        update(notice, message);
    }

    private void render() {
        render("");
    }

    /** The label shows the most important notice, else {@code result}. */
    private void render(String result) {
        Notice notice = status.top();
        if (notice == null) {
            label.setText(result);
        } else if (notice == Notice.CAMERA_DENIED) {
            label.setText(R.string.camera_denied);
        } else if (notice == Notice.NO_CAMERA) {
            label.setText(R.string.no_camera);
        } else if (notice == Notice.LOADING) {
            label.setText(R.string.loading);
        } else {
            label.setText(status.detail(notice));
        }
    }

    @Override
    protected void onDestroy() {
        super.onDestroy();
        worker.execute(() -> {
            if (recognizer != null) {
                recognizer.close();
                recognizer = null;
            }
        });
        worker.shutdown();
    }
}
