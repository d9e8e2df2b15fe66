package org.itemrec.demo;

import android.content.Context;
import android.content.res.AssetFileDescriptor;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;

import org.itemrec.core.Fingerprints;
import org.itemrec.core.FrameRecognizer;
import org.itemrec.core.Gallery;
import org.itemrec.core.GalleryReader;
import org.tensorflow.lite.Interpreter;

/** Loads the model and the gallery from the APK's assets into a {@link FrameRecognizer}. */
final class RecognizerLoader {
    static final int TOP_K = 3;

    private RecognizerLoader() {}

    /** @throws IOException a missing or bad asset, or a gallery made by another model (nothing is leaked) */
    static FrameRecognizer load(Context context, String modelAsset, String galleryAsset, int threads)
            throws IOException {
        MappedByteBuffer model = mapAsset(context, modelAsset);
        Gallery gallery;
        try (InputStream in = context.getAssets().open(galleryAsset)) {
            gallery = GalleryReader.read(in, "assets/" + galleryAsset);
        }
        String fingerprint = Fingerprints.sha256Hex(model);
        Interpreter interpreter = new Interpreter(model, new Interpreter.Options().setNumThreads(threads));
        return FrameRecognizer.open(new LiteRtModel(interpreter), fingerprint, gallery, TOP_K);
    }

    /** The asset memory-mapped from the APK (stored uncompressed: see noCompress in build.gradle.kts). */
    private static MappedByteBuffer mapAsset(Context context, String name) throws IOException {
        try (AssetFileDescriptor fd = context.getAssets().openFd(name);
                FileInputStream stream = new FileInputStream(fd.getFileDescriptor());
                FileChannel channel = stream.getChannel()) {
            return channel.map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
        }
    }
}
