package org.itemrec.demo;

import android.content.Context;
import android.graphics.Canvas;
import android.graphics.Paint;
import android.util.AttributeSet;
import android.view.View;

import org.itemrec.core.ScreenRect;
import org.itemrec.core.Viewfinder;

/** Marks on the preview the part of the frame the model sees: outside it dimmed, a white border. */
public final class ModelSquareOverlay extends View {
    private final Paint dim = new Paint();
    private final Paint border = new Paint(Paint.ANTI_ALIAS_FLAG);
    private int frameWidth;
    private int frameHeight;
    private int modelHeight;
    private int modelWidth;
    private ScreenRect crop; // recomputed on changes, not in onDraw (no allocation per frame drawn)

    public ModelSquareOverlay(Context context, AttributeSet attrs) {
        super(context, attrs);
        dim.setColor(0x66000000);
        border.setColor(0xFFFFFFFF);
        border.setStyle(Paint.Style.STROKE);
        border.setStrokeWidth(2 * getResources().getDisplayMetrics().density);
    }

    /** The upright analysis frame's size and the model's input size; redraws when they change. */
    void show(int uprightFrameWidth, int uprightFrameHeight, int inputHeight, int inputWidth) {
        if (uprightFrameWidth == frameWidth && uprightFrameHeight == frameHeight && inputHeight == modelHeight
                && inputWidth == modelWidth) {
            return;
        }
        frameWidth = uprightFrameWidth;
        frameHeight = uprightFrameHeight;
        modelHeight = inputHeight;
        modelWidth = inputWidth;
        place();
        invalidate();
    }

    @Override
    protected void onSizeChanged(int width, int height, int oldWidth, int oldHeight) {
        super.onSizeChanged(width, height, oldWidth, oldHeight);
        place();
    }

    private void place() {
        crop = frameWidth == 0 || getWidth() == 0 || getHeight() == 0 ? null
                : Viewfinder.modelCrop(frameWidth, frameHeight, modelHeight, modelWidth, getWidth(), getHeight());
    }

    @Override
    protected void onDraw(Canvas canvas) {
        super.onDraw(canvas);
        ScreenRect r = crop;
        if (r == null) {
            return;
        }
        canvas.drawRect(0, 0, getWidth(), r.top, dim);
        canvas.drawRect(0, r.bottom, getWidth(), getHeight(), dim);
        canvas.drawRect(0, r.top, r.left, r.bottom, dim);
        canvas.drawRect(r.right, r.top, getWidth(), r.bottom, dim);
        canvas.drawRect(r.left, r.top, r.right, r.bottom, border);
    }
}
