package java.lang.invoke;

/** Platform gap, see LambdaMetafactory. */
public class MethodHandles {
    private MethodHandles() {}

    public static final class Lookup {
        private Lookup() {}
    }
}
