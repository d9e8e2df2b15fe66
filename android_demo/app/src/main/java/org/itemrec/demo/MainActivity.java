package org.itemrec.demo;

import android.Manifest;
import android.content.pm.PackageManager;
import android.graphics.Bitmap;
import android.graphics.Matrix;
import android.os.Bundle;
import android.os.SystemClock;
import android.util.Log;
import android.util.Size;
import android.widget.TextView;

import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.ImageAnalysis;
import androidx.camera.core.ImageProxy;
import androidx.camera.core.Preview;
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

import org.itemrec.core.GalleryFormatException;
import org.itemrec.core.Match;
import org.itemrec.core.Recognition;

/** Camera preview; every analysed frame is recognised and the top-3 and the frame time are shown. */
public class MainActivity extends AppCompatActivity {
    private static final String TAG = "itemrec";
    private static final String MODEL_ASSET = "model.tflite";
    private static final String GALLERY_ASSET = "gallery.bin";
    private static final int THREADS = 4;

    /** Loading and analysis share this one thread, so the recognizer is never used concurrently. */
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private volatile Recognizer recognizer;
    private int[] pixels = new int[0];

    private PreviewView preview;
    private TextView label;
    private TextView top3;
    private TextView timing;

    private final ActivityResultLauncher<String> cameraPermission = registerForActivityResult(
            new ActivityResultContracts.RequestPermission(), granted -> {
                if (granted) {
                    startCamera();
                } else {
                    label.setText(R.string.camera_denied);
                }
            });

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        preview = findViewById(R.id.preview);
        label = findViewById(R.id.label);
        top3 = findViewById(R.id.top3);
        timing = findViewById(R.id.timing);

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
            recognizer = Recognizer.fromAssets(this, MODEL_ASSET, GALLERY_ASSET, THREADS);
            runOnUiThread(() -> label.setText(""));
        } catch (GalleryFormatException e) {
            showError("Bad gallery: " + e.getMessage());
        } catch (IOException | IllegalArgumentException e) {
            showError("Cannot load the model or gallery: " + e.getMessage());
        }
    }

    private void showError(String message) {
        Log.e(TAG, message);
        runOnUiThread(() -> label.setText(message));
    }

    private void startCamera() {
        ListenableFuture<ProcessCameraProvider> future = ProcessCameraProvider.getInstance(this);
        future.addListener(() -> {
            try {
                ProcessCameraProvider provider = future.get();
                Preview previewUseCase = new Preview.Builder().build();
                previewUseCase.setSurfaceProvider(preview.getSurfaceProvider());
                ImageAnalysis analysis = new ImageAnalysis.Builder()
                        .setResolutionSelector(new ResolutionSelector.Builder()
                                .setResolutionStrategy(new ResolutionStrategy(new Size(640, 480),
                                        ResolutionStrategy.FALLBACK_RULE_CLOSEST_HIGHER_THEN_LOWER))
                                .build())
                        .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                        .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                        .build();
                analysis.setAnalyzer(worker, this::analyse);
                provider.unbindAll();
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, previewUseCase, analysis);
            } catch (ExecutionException | InterruptedException e) {
                showError("Cannot start the camera: " + e.getMessage());
            }
        }, ContextCompat.getMainExecutor(this));
    }

    /** Runs on the worker thread for the latest frame only (older frames are dropped). */
    private void analyse(ImageProxy image) {
        long start = SystemClock.elapsedRealtimeNanos();
        Recognizer current = recognizer;
        if (current == null) {
            image.close();
            return;
        }
        int width;
        int height;
        try {
            Bitmap bitmap = image.toBitmap();
            int rotation = image.getImageInfo().getRotationDegrees();
            if (rotation != 0) { // make the frame upright, as the person holding the phone sees it
                Matrix matrix = new Matrix();
                matrix.postRotate(rotation);
                bitmap = Bitmap.createBitmap(bitmap, 0, 0, bitmap.getWidth(), bitmap.getHeight(), matrix, false);
            }
            width = bitmap.getWidth();
            height = bitmap.getHeight();
            if (pixels.length != width * height) {
                pixels = new int[width * height];
            }
            bitmap.getPixels(pixels, 0, width, 0, 0, width, height);
        } finally {
            image.close();
        }
        Recognition result = current.recognise(pixels, height, width);
        long frameMillis = (SystemClock.elapsedRealtimeNanos() - start) / 1_000_000;
        long modelMillis = current.lastModelMillis();
        runOnUiThread(() -> show(result, frameMillis, modelMillis));
    }

    private void show(Recognition result, long frameMillis, long modelMillis) {
        Match best = result.best();
        label.setText(best != null ? best.code() + "  " + best.name() : getString(R.string.unknown_item));
        StringBuilder lines = new StringBuilder();
        int rank = 1;
        for (Match match : result.matches()) {
            lines.append(String.format(Locale.ROOT, "%d. %-14s %.3f  %s%n", rank++, match.code(), match.score(),
                    match.name()));
        }
        top3.setText(lines.toString().trim());
        timing.setText(getString(R.string.timing, frameMillis, modelMillis));
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
