/* examples/plot.h - SVG line plots and heat maps for the example programs
 * (energy curves, attention maps, S(q) and C(r)). Plain C, no dependencies
 * beyond tqs.h's file writer; presentation, so it lives beside the programs
 * rather than in the physics kernel.
 *
 * Functions return 0 or a negative TQS_E... code; plot_last_error() says why.
 * Files are written atomically: a failed write leaves no partial file. */
#ifndef TQS_EXAMPLES_PLOT_H
#define TQS_EXAMPLES_PLOT_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../tqs.h"

typedef struct plot_series {
    const char *label;
    const double *x, *y;     /* n points */
    const double *err;       /* optional: band y +- err */
    int n;
} plot_series;
typedef struct plot_options { /* zero means default */
    const char *title, *xlabel, *ylabel;
    double ref;              /* horizontal reference line (used when ref_label != NULL) */
    const char *ref_label;
    double ymin, ymax;       /* y range (automatic when ymin == ymax) */
} plot_options;
typedef struct plot_heat_options { /* zero means default */
    const char *xlabel, *ylabel;  /* under the columns / beside the rows */
    int row0, col0;               /* tick of row i reads i - row0, of column j reads j - col0 */
    int mark, mark_row, mark_col; /* outline this cell (e.g. zero displacement) when mark != 0 */
    const char *mark_label;       /* what the outline means, for the legend line */
} plot_heat_options;

static char plot__errbuf[512];
static inline const char *plot_last_error(void) { return plot__errbuf; }
static inline int plot__fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plot__errbuf, sizeof plot__errbuf, fmt, ap);
    va_end(ap);
    return code;
}

typedef struct plot__text { char *buf; size_t len, cap; int failed; } plot__text;

static inline void plot__put(plot__text *t, const char *fmt, ...) {
    va_list ap;
    int k;
    if (t->failed) return;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        k = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) { t->failed = 1; return; }
        if ((size_t)k < room) { t->len += (size_t)k; return; }
        {
            size_t cap = 2 * t->cap + (size_t)k + 4096;
            char *nb = (char *)malloc(cap);
            if (!nb) { t->failed = 1; return; }
            if (t->buf) { memcpy(nb, t->buf, t->len); free(t->buf); }
            t->buf = nb; t->cap = cap;
        }
    }
}

/* Text for SVG: &, <, > and quotes escaped. */
static inline void plot__put_escaped(plot__text *t, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': plot__put(t, "&amp;"); break;
        case '<': plot__put(t, "&lt;"); break;
        case '>': plot__put(t, "&gt;"); break;
        case '"': plot__put(t, "&quot;"); break;
        default: plot__put(t, "%c", *s);
        }
    }
}

static inline int plot__text_write(plot__text *t, const char *path) {
    int rc = t->failed ? plot__fail(TQS_ENOMEM, "plot: out of memory") : tqs_write_file_atomic(path, t->buf, t->len);
    if (rc && !t->failed) plot__fail(rc, "%s", tqs_last_error());
    free(t->buf);
    return rc;
}

/* Tick spacing: 1, 2 or 5 times a power of ten, about 5 ticks over [lo, hi]. */
static inline double plot__tick_step(double lo, double hi) {
    double raw = (hi - lo) / 5, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static const char *plot__palette[8] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

static inline int plot_line_svg(const char *path, const plot_series *series, int n_series, const plot_options *opt) {
    const double W = 760, H = 460, L = 80, R = 200, T = 40, B = 60, pw = W - L - R, ph = H - T - B;
    double x0 = HUGE_VAL, x1 = -HUGE_VAL, y0 = HUGE_VAL, y1 = -HUGE_VAL, step, v;
    plot_options o;
    plot__text t = {NULL, 0, 0, 0};
    int k, i;
    if (!path || (!series && n_series > 0) || n_series < 0) return plot__fail(TQS_EINVAL, "plot: null pointer");
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    for (k = 0; k < n_series; k++)
        for (i = 0; i < series[k].n; i++) {
            if (!isfinite(series[k].x[i]) || !isfinite(series[k].y[i])) continue;
            if (series[k].x[i] < x0) x0 = series[k].x[i];
            if (series[k].x[i] > x1) x1 = series[k].x[i];
            if (series[k].y[i] < y0) y0 = series[k].y[i];
            if (series[k].y[i] > y1) y1 = series[k].y[i];
        }
    if (o.ref_label && isfinite(o.ref)) { if (o.ref < y0) y0 = o.ref; if (o.ref > y1) y1 = o.ref; }
    if (o.ymin < o.ymax) { y0 = o.ymin; y1 = o.ymax; }
    if (!(x0 <= x1) || !(y0 <= y1)) return plot__fail(TQS_EINVAL, "plot: no finite points to draw");
    if (x1 - x0 < 1e-300) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-12 * (fabs(y0) + 1e-300)) { y0 -= 0.5 * fabs(y0) + 1e-3; y1 += 0.5 * fabs(y1) + 1e-3; }
    { double pad = 0.04 * (y1 - y0); if (!(o.ymin < o.ymax)) { y0 -= pad; y1 += pad; } }
#define TQS__PX(x) (L + ((x) - x0) / (x1 - x0) * pw)
#define TQS__PY(y) (T + (y1 - (y)) / (y1 - y0) * ph)
    plot__put(&t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
                 "font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    plot__put(&t, "<defs><clipPath id=\"area\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath></defs>\n", L, T, pw, ph);
    if (o.title) { plot__put(&t, "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", L + pw / 2); plot__put_escaped(&t, o.title); plot__put(&t, "</text>\n"); }
    /* ticks and grid */
    step = plot__tick_step(x0, x1);
    for (v = ceil(x0 / step) * step; v <= x1 + 1e-9 * step; v += step)
        plot__put(&t, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#e6e6e6\"/><text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n",
                 TQS__PX(v), T, TQS__PX(v), T + ph, TQS__PX(v), T + ph + 18, fabs(v) < 1e-12 * step ? 0.0 : v);
    step = plot__tick_step(y0, y1);
    for (v = ceil(y0 / step) * step; v <= y1 + 1e-9 * step; v += step)
        plot__put(&t, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#e6e6e6\"/><text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n",
                 L, TQS__PY(v), L + pw, TQS__PY(v), L - 6, TQS__PY(v) + 4, fabs(v) < 1e-12 * step ? 0.0 : v);
    plot__put(&t, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
    if (o.xlabel) { plot__put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", L + pw / 2, H - 16); plot__put_escaped(&t, o.xlabel); plot__put(&t, "</text>\n"); }
    if (o.ylabel) { plot__put(&t, "<text transform=\"translate(20 %g) rotate(-90)\" text-anchor=\"middle\">", T + ph / 2); plot__put_escaped(&t, o.ylabel); plot__put(&t, "</text>\n"); }
    /* bands, then lines, clipped to the plot area */
    plot__put(&t, "<g clip-path=\"url(#area)\">\n");
    for (k = 0; k < n_series; k++) {
        const plot_series *s = &series[k];
        if (!s->err) continue;
        plot__put(&t, "<path fill=\"%s\" fill-opacity=\"0.25\" stroke=\"none\" d=\"", plot__palette[k % 8]);
        for (i = 0; i < s->n; i++) if (isfinite(s->y[i]) && isfinite(s->err[i])) plot__put(&t, "%s%.2f %.2f ", i ? "L" : "M", TQS__PX(s->x[i]), TQS__PY(s->y[i] + s->err[i]));
        for (i = s->n - 1; i >= 0; i--) if (isfinite(s->y[i]) && isfinite(s->err[i])) plot__put(&t, "L%.2f %.2f ", TQS__PX(s->x[i]), TQS__PY(s->y[i] - s->err[i]));
        plot__put(&t, "Z\"/>\n");
    }
    for (k = 0; k < n_series; k++) {
        const plot_series *s = &series[k];
        int pen = 0;
        plot__put(&t, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" d=\"", plot__palette[k % 8]);
        for (i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]) || !isfinite(s->x[i])) { pen = 0; continue; }
            plot__put(&t, "%s%.2f %.2f ", pen ? "L" : "M", TQS__PX(s->x[i]), TQS__PY(s->y[i]));
            pen = 1;
        }
        plot__put(&t, "\"/>\n");
    }
    if (o.ref_label && isfinite(o.ref))
        plot__put(&t, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n", L, TQS__PY(o.ref), L + pw, TQS__PY(o.ref));
    plot__put(&t, "</g>\n");
    /* legend */
    for (k = 0; k <= n_series; k++) {
        double ly = T + 12 + 22 * k;
        if (k == n_series) {
            if (!o.ref_label || !isfinite(o.ref)) break;
            plot__put(&t, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\" stroke-dasharray=\"6 4\"/>", L + pw + 14, ly, L + pw + 40, ly);
            plot__put(&t, "<text x=\"%g\" y=\"%g\">", L + pw + 46, ly + 4); plot__put_escaped(&t, o.ref_label); plot__put(&t, "</text>\n");
            break;
        }
        plot__put(&t, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"3\"/>", L + pw + 14, ly, L + pw + 40, ly, plot__palette[k % 8]);
        plot__put(&t, "<text x=\"%g\" y=\"%g\">", L + pw + 46, ly + 4); plot__put_escaped(&t, series[k].label ? series[k].label : "");
        plot__put(&t, "</text>\n");
    }
#undef TQS__PX
#undef TQS__PY
    plot__put(&t, "</svg>\n");
    return plot__text_write(&t, path);
}

/* A viridis-like colour map through five anchors, u in [0, 1]. */
static inline void plot__colour(double u, int *r, int *g, int *b) {
    static const double a[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    double x = (u < 0 ? 0 : u > 1 ? 1 : u) * 4, f;
    int k = x >= 4 ? 3 : (int)x;
    f = x - k;
    *r = (int)(a[k][0] + f * (a[k + 1][0] - a[k][0]) + 0.5);
    *g = (int)(a[k][1] + f * (a[k + 1][1] - a[k][1]) + 0.5);
    *b = (int)(a[k][2] + f * (a[k + 1][2] - a[k][2]) + 0.5);
}

/* n_maps heat maps of rows x cols side by side, one shared colour scale and a
 * colour bar; labels (may be NULL) name each map. With opt (may be NULL):
 * ticks labelled row - row0 and col - col0 (a displacement map centred on
 * zero reads in displacements), axis titles, and with mark set an outline on
 * cell (mark_row, mark_col). */
static inline int plot_heat_maps(const char *path, const char *title, const double *maps, int n_maps, int rows, int cols,
                                 const char *const *labels, const char *colorbar_label, const plot_heat_options *opt) {
    double lo = HUGE_VAL, hi = -HUGE_VAL, cell, pw, phh, W, H;
    int per_row, k, i, j, nr, tick_every;
    size_t e;
    plot__text t = {NULL, 0, 0, 0};
    plot_heat_options o;
    if (!path || !maps || n_maps < 1 || rows < 1 || cols < 1) return plot__fail(TQS_EINVAL, "heat map: null pointer or empty map");
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    if (o.mark && (o.mark_row < 0 || o.mark_row >= rows || o.mark_col < 0 || o.mark_col >= cols))
        return plot__fail(TQS_EINVAL, "heat map: marked cell (%d, %d) outside %d x %d", o.mark_row, o.mark_col, rows, cols);
    for (e = 0; e < (size_t)n_maps * rows * cols; e++) {
        if (!isfinite(maps[e])) continue;
        if (maps[e] < lo) lo = maps[e];
        if (maps[e] > hi) hi = maps[e];
    }
    if (!(lo <= hi)) return plot__fail(TQS_EINVAL, "heat map: no finite values");
    if (hi - lo < 1e-300) hi = lo + 1;
    cell = 200.0 / (rows > cols ? rows : cols);
    if (cell > 40) cell = 40;
    pw = cell * cols; phh = cell * rows;
    tick_every = cell >= 14 ? 1 : (int)ceil(14 / cell);   /* ticks no closer than 14 px */
    per_row = n_maps < 4 ? n_maps : 4;
    nr = (n_maps + per_row - 1) / per_row;
    W = 45 + per_row * (pw + 50) + 110; H = 50 + nr * (phh + 70) + 10 + (o.mark ? 20 : 0);
    if (title && W < 7.5 * strlen(title) + 40) W = 7.5 * strlen(title) + 40;   /* room for the title */
    if (H < 280) H = 280;                                                        /* and the colour bar */
    plot__put(&t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    if (title) { plot__put(&t, "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", W / 2); plot__put_escaped(&t, title); plot__put(&t, "</text>\n"); }
    for (k = 0; k < n_maps; k++) {
        double ox = 45 + (k % per_row) * (pw + 50), oy = 50 + (k / per_row) * (phh + 70) + 16;
        if (labels && labels[k]) { plot__put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", ox + pw / 2, oy - 5); plot__put_escaped(&t, labels[k]); plot__put(&t, "</text>\n"); }
        for (i = 0; i < rows; i++)
            for (j = 0; j < cols; j++) {
                double v = maps[((size_t)k * rows + i) * cols + j];
                int r, g, b;
                plot__colour((v - lo) / (hi - lo), &r, &g, &b);
                plot__put(&t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"rgb(%d,%d,%d)\"><title>%.4g</title></rect>\n",
                         ox + j * cell, oy + i * cell, cell + 0.3, cell + 0.3, r, g, b, v);
            }
        plot__put(&t, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n", ox, oy, pw, phh);
        for (j = 0; j < cols; j += tick_every)   /* ticks: columns below, rows on the left */
            plot__put(&t, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"10\">%d</text>\n", ox + (j + 0.5) * cell,
                     oy + phh + 12, j - o.col0);
        for (i = 0; i < rows; i += tick_every)
            plot__put(&t, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"10\">%d</text>\n", ox - 3, oy + (i + 0.5) * cell + 3,
                     i - o.row0);
        if (o.xlabel) { plot__put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"11\">", ox + pw / 2, oy + phh + 26); plot__put_escaped(&t, o.xlabel); plot__put(&t, "</text>\n"); }
        if (o.ylabel) {
            plot__put(&t, "<text transform=\"translate(%g,%g) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">", ox - 22, oy + phh / 2);
            plot__put_escaped(&t, o.ylabel); plot__put(&t, "</text>\n");
        }
        if (o.mark)   /* white under black dashes: visible on dark and on light cells */
            plot__put(&t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"white\" stroke-width=\"3\"/>"
                         "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"black\" stroke-width=\"2\" "
                         "stroke-dasharray=\"3,2\"/>\n", ox + o.mark_col * cell + 2, oy + o.mark_row * cell + 2, cell - 4, cell - 4,
                     ox + o.mark_col * cell + 2, oy + o.mark_row * cell + 2, cell - 4, cell - 4);
    }
    if (o.mark && o.mark_label) {
        plot__put(&t, "<rect x=\"20\" y=\"%g\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/>"
                     "<text x=\"38\" y=\"%g\" font-size=\"11\">", H - 24, H - 14);
        plot__put_escaped(&t, o.mark_label); plot__put(&t, "</text>\n");
    }
    {   /* colour bar: 32 steps from lo (bottom) to hi (top) */
        double bx = W - 100, by = 50, bh = 200 > H - 70 ? H - 70 : 200;
        for (i = 0; i < 32; i++) {
            int r, g, b;
            plot__colour((i + 0.5) / 32, &r, &g, &b);
            plot__put(&t, "<rect x=\"%g\" y=\"%.2f\" width=\"16\" height=\"%.2f\" fill=\"rgb(%d,%d,%d)\"/>\n", bx, by + bh - (i + 1) * bh / 32, bh / 32 + 0.3, r, g, b);
        }
        plot__put(&t, "<rect x=\"%g\" y=\"%g\" width=\"16\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n", bx, by, bh);
        for (i = 0; i <= 4; i++)
            plot__put(&t, "<text x=\"%g\" y=\"%.2f\">%.3g</text>\n", bx + 20, by + bh - i * bh / 4 + 4, lo + i * (hi - lo) / 4);
        if (colorbar_label) { plot__put(&t, "<text x=\"%g\" y=\"%g\">", bx - 4, by + bh + 20); plot__put_escaped(&t, colorbar_label); plot__put(&t, "</text>\n"); }
    }
    plot__put(&t, "</svg>\n");
    return plot__text_write(&t, path);
}

#endif /* TQS_EXAMPLES_PLOT_H */
