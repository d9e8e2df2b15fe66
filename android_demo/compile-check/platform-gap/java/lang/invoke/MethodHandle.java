package java.lang.invoke;

/** Platform gap, see LambdaMetafactory. */
public abstract class MethodHandle {
}
