#!/usr/bin/env bash
# Compiles the Android app's Java with javac -Xlint:all -Werror against a real platform android.jar
# (API 23, built from AOSP by Debian: package libandroid-23-java), the core's classes, a generated
# R class and minimal stubs of the AndroidX/CameraX/LiteRT/Guava API surface the app calls
# (stubs/). No Android SDK or Google Maven is needed; see README.md in this folder.
#
#   android_demo/compile-check/compile-app.sh        (make check-android runs it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
demo="$(dirname "$here")"
build="$demo/build/compile-check"
jar="$build/android-23.jar"
mkdir -p "$build"

# Debian 12 no longer ships the platform jar; Debian 11 (bullseye) does. Fetch that one .deb with
# apt's own signature checks, into build/ only: nothing is installed or added to the system's sources.
fetch_android_jar() {
    local apt="$build/apt" deb
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
    local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null"
        -o "APT::Sandbox::User=root")
    for mirror in http://deb.debian.org/debian http://archive.debian.org/debian; do
        echo "deb $mirror bullseye main" > "$apt/sources.list"
        if apt-get "${opts[@]}" -qq update && (cd "$apt/debs" && apt-get "${opts[@]}" -qq download libandroid-23-java); then
            deb="$(ls "$apt"/debs/libandroid-23-java_*.deb)"
            dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/java/com.android.android-23.jar > "$jar.tmp"
            mv "$jar.tmp" "$jar"
            return 0
        fi
    done
    echo "compile-check: could not download libandroid-23-java from Debian bullseye" >&2
    return 1
}
[ -s "$jar" ] || fetch_android_jar

rm -rf "$build/classes" "$build/gen"
mkdir -p "$build/classes/core" "$build/classes/gap" "$build/classes/stubs" "$build/classes/app" "$build/gen"
# The core as Gradle and Maven build it (Java 11). The rest as Java 8 source: javac takes a platform
# jar only as -bootclasspath, which needs -source 8; the app uses no later syntax. android-23 has no
# java.lang.invoke, which javac needs to emit lambdas: platform-gap/ declares just those types.
javac -Xlint:all -Werror --release 11 -d "$build/classes/core" $(find "$demo/core/src/main/java" -name '*.java')
platform="$jar:$build/classes/gap"
javac8() { javac -Xlint:all -Werror -source 8 -target 8 -bootclasspath "$platform" "$@"; }
javac8 -d "$build/classes/gap" $(find "$here/platform-gap" -name '*.java')
javac8 -d "$build/classes/stubs" $(find "$here/stubs" -name '*.java')
java "$here/GenerateR.java" "$demo/app/src/main/res" org.itemrec.demo "$build/gen"
javac8 -classpath "$build/classes/core:$build/classes/stubs" -d "$build/classes/app" \
    $(find "$demo/app/src/main/java" "$build/gen" -name '*.java')
echo "compile-check: the app's $(find "$demo/app/src/main/java" -name '*.java' | wc -l) Java files compile with" \
    "-Xlint:all -Werror against android-23.jar (sha256 $(sha256sum "$jar" | cut -c1-16)…)"
