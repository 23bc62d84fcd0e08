/* tests/test.h - a tiny test harness: checks report file:line, expected and
 * actual values; test_summary() prints "N passed, N failed" and gives the
 * exit status. Include once per test program. */
#ifndef TQS_TEST_H
#define TQS_TEST_H
#include <math.h>
#include <stdio.h>

static int test_passed, test_failed;

static void test_record(int ok, const char *file, int line, const char *what) {
    if (ok) { test_passed++; return; }
    test_failed++;
    fprintf(stdout, "FAIL %s:%d: %s\n", file, line, what);
}

/* A condition that must hold. */
#define CHECK(cond) test_record(!!(cond), __FILE__, __LINE__, #cond)

/* Two integers that must be equal. */
#define CHECK_EQ(actual, expected) do { \
    long long a_ = (long long)(actual), e_ = (long long)(expected); \
    char m_[256]; snprintf(m_, sizeof m_, "%s: expected %lld, got %lld", #actual, e_, a_); \
    test_record(a_ == e_, __FILE__, __LINE__, m_); } while (0)

/* |actual - expected| <= tol (NaN fails). */
#define CHECK_NEAR(actual, expected, tol) do { \
    double a_ = (double)(actual), e_ = (double)(expected), t_ = (double)(tol); \
    char m_[320]; snprintf(m_, sizeof m_, "%s: expected %.15g, got %.15g (|diff| %.3g > tol %.3g)", \
                           #actual, e_, a_, fabs(a_ - e_), t_); \
    test_record(fabs(a_ - e_) <= t_, __FILE__, __LINE__, m_); } while (0)

/* actual < bound (NaN fails). */
#define CHECK_BELOW(actual, bound) do { \
    double a_ = (double)(actual), b_ = (double)(bound); \
    char m_[256]; snprintf(m_, sizeof m_, "%s: expected below %.6g, got %.6g", #actual, b_, a_); \
    test_record(a_ < b_, __FILE__, __LINE__, m_); } while (0)

#ifdef TEST_DENSE_SOLVE
/* Gaussian elimination with partial pivoting: the tests' own dense solver,
 * independent of the library's Cholesky (A and b are overwritten; x in b). */
static void dense_solve(double *A, double *b, int n) {
    int i, j, k;
    for (k = 0; k < n; k++) {
        int p = k;
        for (i = k + 1; i < n; i++) if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
        for (j = 0; j < n; j++) { double t = A[k * n + j]; A[k * n + j] = A[p * n + j]; A[p * n + j] = t; }
        { double t = b[k]; b[k] = b[p]; b[p] = t; }
        for (i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            b[i] -= f * b[k];
        }
    }
    for (i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (j = i + 1; j < n; j++) s -= A[i * n + j] * b[j];
        b[i] = s / A[i * n + i];
    }
}
#endif

static int test_summary(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
#endif
