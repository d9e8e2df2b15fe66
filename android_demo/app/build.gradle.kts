plugins {
    id("com.android.application")
}

android {
    namespace = "org.itemrec.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.itemrec.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    lint {
        abortOnError = true // lintDebug fails CI on any lint error
    }

    // The interpreter memory-maps the model straight from the APK: keep it uncompressed.
    androidResources {
        noCompress += "tflite"
    }
}

dependencies {
    implementation(project(":core"))

    // 1.4.2: the first CameraX whose libimage_processing_util_jni.so (RGBA_8888 analysis needs it) is
    // 16 KB-aligned, so analysis works on Android 15+ devices with 16 KB pages (versions: see README.md).
    val camerax = "1.4.2"
    implementation("androidx.camera:camera-core:$camerax")
    implementation("androidx.camera:camera-camera2:$camerax")
    implementation("androidx.camera:camera-lifecycle:$camerax")
    implementation("androidx.camera:camera-view:$camerax")

    // LiteRT, the TensorFlow Lite runtime under its new name (org.tensorflow.lite.Interpreter API);
    // its native libraries are 16 KB-aligned from 1.4.0.
    implementation("com.google.ai.edge.litert:litert:1.4.1")

    implementation("androidx.appcompat:appcompat:1.7.0")
}

// Copies the Python side's outputs into the app's assets (paths absolute or relative to android_demo/):
//   ./gradlew :app:copyItemrecAssets -PitemrecModel=../out/model.tflite -PitemrecGallery=../out/gallery.bin
// With both properties set, every build copies them first.
val itemrecModel = providers.gradleProperty("itemrecModel")
val itemrecGallery = providers.gradleProperty("itemrecGallery")

val copyItemrecAssets by tasks.registering {
    description = "Copies -PitemrecModel and -PitemrecGallery into src/main/assets."
    group = "itemrec"
    val root = rootProject.layout.projectDirectory
    val assets = layout.projectDirectory.dir("src/main/assets")
    doLast {
        if (!itemrecModel.isPresent || !itemrecGallery.isPresent) {
            throw GradleException("pass -PitemrecModel=<model.tflite> -PitemrecGallery=<gallery.bin>")
        }
        val into = assets.asFile.apply { mkdirs() }
        root.file(itemrecModel.get()).asFile.copyTo(into.resolve("model.tflite"), overwrite = true)
        root.file(itemrecGallery.get()).asFile.copyTo(into.resolve("gallery.bin"), overwrite = true)
    }
}

if (itemrecModel.isPresent && itemrecGallery.isPresent) {
    tasks.named("preBuild") { dependsOn(copyItemrecAssets) }
}
