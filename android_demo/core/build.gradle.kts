// The plain-Java core (no android.*), the same sources Maven builds through pom.xml.
plugins {
    `java-library`
}

// Java 11 against Java 11's own API (--release), with the same warnings-as-errors as core/pom.xml.
tasks.withType<JavaCompile>().configureEach {
    options.release.set(11)
    options.compilerArgs.addAll(listOf("-Xlint:all", "-Werror"))
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}
