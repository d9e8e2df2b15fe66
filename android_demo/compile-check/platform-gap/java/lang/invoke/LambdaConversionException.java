package java.lang.invoke;

/** Platform gap, see LambdaMetafactory. */
public class LambdaConversionException extends Exception {
    private static final long serialVersionUID = 1L;
}
