package java.lang.invoke;

/** Platform gap, see LambdaMetafactory. */
public final class MethodType {
    private MethodType() {}
}
