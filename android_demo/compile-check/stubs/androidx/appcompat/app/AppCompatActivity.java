package androidx.appcompat.app;

/** The real one extends FragmentActivity, which extends androidx.activity.ComponentActivity. */
public class AppCompatActivity extends androidx.activity.ComponentActivity {
}
