package java.lang.invoke;

/**
 * Platform gap: javac emits lambdas as invokedynamic calls to these bootstrap methods and needs
 * their types at compile time, but android-23.jar has no java.lang.invoke. On a device D8
 * desugars every lambda for minSdk 24, so none of these classes is ever used at run time.
 */
public final class LambdaMetafactory {
    private LambdaMetafactory() {}

    public static CallSite metafactory(MethodHandles.Lookup caller, String invokedName, MethodType invokedType,
            MethodType samMethodType, MethodHandle implMethod, MethodType instantiatedMethodType)
            throws LambdaConversionException {
        throw new UnsupportedOperationException("compile-check stub");
    }

    public static CallSite altMetafactory(MethodHandles.Lookup caller, String invokedName, MethodType invokedType,
            Object... args) throws LambdaConversionException {
        throw new UnsupportedOperationException("compile-check stub");
    }
}
