/* The library's own elementary functions against libm: exp, log, sin and
 * cos, atan2 (tqs__expv, tqs__logv, tqs__sincosv, tqs__atan2v), written
 * without branches or calls so that the loops of GELU, the output head,
 * the local energy and psi_sym vectorise. They are private, so this program
 * compiles the implementation into itself (TQS_STATIC: no clash with the
 * library object it is linked with). */
#define TQS_STATIC
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "test.h"

/* |a - b| in units of the spacing of doubles at b. */
static double ulps(double a, double b) {
    double u = fabs(nextafter(b, INFINITY) - b);
    return a == b ? 0.0 : fabs(a - b) / u;
}

int main(void) {
    tqs_rng r;
    double e_exp = 0, e_log = 0, e_sin = 0, e_cos = 0, e_abs = 0, e_atan = 0, sv, cv;
    long i, n = 1000000;
    tqs_rng_seed(&r, 11, 0);
    for (i = 0; i < n; i++) {
        double x = (tqs_rng_uniform(&r) - 0.5) * 1400;                 /* exp over [-700, 700] */
        double l = exp((tqs_rng_uniform(&r) - 0.5) * 1400);            /* log over e^[-700, 700] */
        double a = (tqs_rng_uniform(&r) - 0.5) * 2000;                 /* sin, cos over [-1000, 1000] */
        double y0 = (tqs_rng_uniform(&r) - 0.5) * exp((tqs_rng_uniform(&r) - 0.5) * 40);
        double x0 = (tqs_rng_uniform(&r) - 0.5) * exp((tqs_rng_uniform(&r) - 0.5) * 40);
        double e;
        if ((e = ulps(tqs__expv(x), exp(x))) > e_exp) e_exp = e;
        if ((e = ulps(tqs__logv(l), log(l))) > e_log) e_log = e;
        tqs__sincosv(a, &sv, &cv);
        /* near a zero of sin or cos the error is absolute (the reduction's), so ulps there only where |value| > 1e-3 */
        if (fabs(sin(a)) > 1e-3 && (e = ulps(sv, sin(a))) > e_sin) e_sin = e;
        if (fabs(cos(a)) > 1e-3 && (e = ulps(cv, cos(a))) > e_cos) e_cos = e;
        if ((e = fabs(sv - sin(a))) > e_abs) e_abs = e;
        if ((e = fabs(cv - cos(a))) > e_abs) e_abs = e;
        if ((e = ulps(tqs__atan2v(y0, x0), atan2(y0, x0))) > e_atan) e_atan = e;
    }
    printf("  %ld random arguments each, largest error against libm: exp %.0f ulp, log %.0f, sin %.0f, cos %.0f "
           "(absolute %.2g), atan2 %.0f\n", n, e_exp, e_log, e_sin, e_cos, e_abs, e_atan);
    /* Bounds: each function rounds about ten operations after an exact (or
     * two-part) argument reduction, and its series is truncated below 1e-17
     * relative; the last one or two additions carry most of the rounding
     * (1 ulp each at most), libm's own result is within 1 ulp: 3 ulp. A wrong
     * coefficient, sign or quadrant shows as 1e3 ulp or more. sin and cos
     * absolutely: 3 ulp of 1 (the largest values) = 6.7e-16. */
    CHECK_BELOW(e_exp, 3.0001);
    CHECK_BELOW(e_log, 3.0001);
    CHECK_BELOW(e_sin, 3.0001);
    CHECK_BELOW(e_cos, 3.0001);
    CHECK_BELOW(e_abs, 6.7e-16);
    CHECK_BELOW(e_atan, 3.0001);
    /* the edges the callers meet: atan2 on the axes and at the origin, log of 1 and of 0 (floored) */
    CHECK(tqs__atan2v(0.0, 0.0) == 0.0);
    CHECK(tqs__atan2v(0.0, -1.0) == atan2(0.0, -1.0));
    CHECK(tqs__atan2v(-0.0, -1.0) == atan2(-0.0, -1.0));
    CHECK(tqs__atan2v(1.0, 0.0) == atan2(1.0, 0.0));
    CHECK(tqs__atan2v(-1.0, 0.0) == atan2(-1.0, 0.0));
    CHECK(tqs__logv(1.0) == 0.0);
    CHECK_NEAR(tqs__logv(0.0), log(2.2250738585072014e-308), 1e-12);
    CHECK(tqs__logv(NAN) != tqs__logv(NAN));
    tqs__sincosv(0.0, &sv, &cv);
    CHECK(sv == 0.0 && cv == 1.0);
    return test_summary();
}
