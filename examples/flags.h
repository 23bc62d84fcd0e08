/* examples/flags.h - command-line parsing shared by the example programs.
 * Every error is one line on stderr naming the flag and the rule, and exit
 * status 2, before anything is written. */
#ifndef TQS_FLAGS_H
#define TQS_FLAGS_H
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

static const char *flags_prog = "tqs";

static inline void flags_die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", flags_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* The value after flag argv[*i]; advances *i. */
static inline const char *flags_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) flags_die("%s needs a value", argv[*i]);
    return argv[++*i];
}

static inline long flags_long(const char *flag, const char *v, long lo, long hi) {
    char *end;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (end == v || *end) flags_die("%s: '%s' is not an integer", flag, v);
    if (errno == ERANGE || x < lo || x > hi)
        flags_die("%s: %s is out of range [%ld, %ld]", flag, v, lo, hi);
    return x;
}

static inline double flags_double(const char *flag, const char *v, double lo, double hi) {
    char *end;
    double x;
    errno = 0;
    x = strtod(v, &end);
    if (end == v || *end) flags_die("%s: '%s' is not a number", flag, v);
    if (errno == ERANGE || !isfinite(x) || x < lo || x > hi)
        flags_die("%s: %s is out of range [%g, %g]", flag, v, lo, hi);
    return x;
}

/* Integer flag: "--name V". Returns 1 (and parses) when argv[*i] is it. */
static inline int flags_int(int argc, char **argv, int *i, const char *name, int *out, int lo, int hi) {
    if (strcmp(argv[*i], name)) return 0;
    *out = (int)flags_long(name, flags_value(argc, argv, i), lo, hi);
    return 1;
}

static inline int flags_real(int argc, char **argv, int *i, const char *name, double *out, double lo, double hi) {
    if (strcmp(argv[*i], name)) return 0;
    *out = flags_double(name, flags_value(argc, argv, i), lo, hi);
    return 1;
}

static inline int flags_str(int argc, char **argv, int *i, const char *name, const char **out) {
    if (strcmp(argv[*i], name)) return 0;
    *out = flags_value(argc, argv, i);
    return 1;
}

static inline int flags_bool(char **argv, int i, const char *name, int *out) {
    if (strcmp(argv[i], name)) return 0;
    *out = 1;
    return 1;
}

/* --L sets both sides; --Lx / --Ly one each. The flag last used for each
 * side is remembered, so that a message names the flag the user typed. */
static const char *flags_lx_flag = "--Lx", *flags_ly_flag = "--Ly";
static inline int flags_lattice(int argc, char **argv, int *i, int *Lx, int *Ly) {
    int L;
    if (flags_int(argc, argv, i, "--L", &L, 1, 4096)) { *Lx = *Ly = L; flags_lx_flag = flags_ly_flag = "--L"; return 1; }
    if (flags_int(argc, argv, i, "--Lx", Lx, 1, 4096)) { flags_lx_flag = "--Lx"; return 1; }
    if (flags_int(argc, argv, i, "--Ly", Ly, 1, 4096)) { flags_ly_flag = "--Ly"; return 1; }
    return 0;
}

/* The lattice rule of tqs.h, checked here so the message names the flag. */
static inline void flags_check_lattice(int Lx, int Ly) {
    if (Lx < 4 || Lx % 2) flags_die("%s: must be even and >= 4 (got %d)", flags_lx_flag, Lx);
    if (Ly < 4 || Ly % 2) flags_die("%s: must be even and >= 4 (got %d)", flags_ly_flag, Ly);
}

/* An output file of the run, checked before any work: its directory must
 * exist and let a file be created in it (probed by creating and removing
 * PATH.tmp, the name tqs.h's savers write first), and PATH itself, if it
 * exists, must be writable. Refused like a bad flag (exit status 2);
 * nothing is left behind. */
static inline void flags_check_output(const char *flag, const char *path) {
    char probe[4096];
    FILE *f;
    if (!path) return;
    if (!*path) flags_die("%s: the file name is empty", flag);
    if (strlen(path) + 5 > sizeof probe) flags_die("%s: the file name is too long", flag);
    f = fopen(path, "r");
    if (f) {   /* exists: opening to append changes nothing and fails on a directory or a read-only file */
        fclose(f);
        f = fopen(path, "a");
        if (!f) flags_die("%s: cannot write '%s' (%s)", flag, path, strerror(errno));
        fclose(f);
    }
    snprintf(probe, sizeof probe, "%s.tmp", path);
    f = fopen(probe, "r");
    if (f) { fclose(f); return; }   /* a leftover PATH.tmp: the directory exists; the saver replaces it */
    f = fopen(probe, "w");
    if (!f) flags_die("%s: cannot create files next to '%s' (%s)", flag, path, strerror(errno));
    fclose(f);
    remove(probe);
}

/* Bytes of physical memory (32 GB if the system does not say): sizes that
 * would need more are refused before anything is allocated. */
static inline double flags_physical_memory(void) {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0) return (double)pages * (double)size;
#endif
    return 32e9;
}

/* The couplings of a run that starts from a model file (--init, or a model
 * to evaluate): the ones it was trained at (recorded by the library since
 * model files of version 2; NAN in older files and untrained models),
 * unless the flags give others. What was decided is written to msg as one
 * line for the program to print once its flags are all checked: a coupling
 * that differs from the model's (for training, a warm start) is always
 * said, never silent (returns 1); the others (the model's taken, none
 * recorded) return 0, for the program to print unless quiet. */
static inline int flags_model_couplings(char *msg, size_t cap, double *J1, double *J2, int given_J1, int given_J2,
                                        double model_J1, double model_J2, const char *flag, const char *what_differs) {
    msg[0] = 0;
    if (!isfinite(model_J1) || !isfinite(model_J2)) {
        if (!given_J1 && !given_J2)
            snprintf(msg, cap, "%s: %s: the model records no couplings (untrained, or a file of version 1): "
                     "J1 = %g, J2 = %g (--J2 to choose)", flags_prog, flag, *J1, *J2);
        return 0;
    }
    if (!given_J1) *J1 = model_J1;
    if (!given_J2) *J2 = model_J2;
    if (*J1 != model_J1 || *J2 != model_J2) {
        snprintf(msg, cap, "%s: %s: %s: the model was trained at J1 = %g, J2 = %g, this run is at J1 = %g, J2 = %g",
                 flags_prog, flag, what_differs, model_J1, model_J2, *J1, *J2);
        return 1;
    }
    if (!given_J1 && !given_J2)
        snprintf(msg, cap, "%s: %s: at the couplings the model was trained at, J1 = %g, J2 = %g (--J2 to change)",
                 flags_prog, flag, model_J1, model_J2);
    return 0;
}
#endif
