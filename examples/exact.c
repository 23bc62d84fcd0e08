/* exact.c - ground-state energy of the J1-J2 model by Lanczos (N <= 24).
 *   ./examples/exact --L 4 [--J2 0.5] [--J1 1] [--json] [--observables [--svg PREFIX]]
 * The defaults (4x4, J1 = 1, J2 = 0.5) are those of the other programs. */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include "observables.h"

/* How much of the ground state's weight has Marshall's sign:
 * sum_s psi(s)^2 sign(psi(s)) (-1)^n_A(s), n_A the up spins on the
 * sublattice x + y even (1 at J2 = 0, Marshall's theorem); the overall sign
 * of the Lanczos vector is arbitrary, so its absolute value. */
static double marshall_sign(const tqs_ed_result *ed, int Lx, int Ly) {
    tqs_basis B;
    double acc = 0;
    size_t k;
    int8_t s[TQS_ED_MAX_SITES];
    if (tqs_basis_init(&B, Lx * Ly)) return NAN;
    for (k = 0; k < B.dim; k++) {
        double p = ed->vector[k];
        tqs_bits_to_config(s, B.states[k], Lx * Ly);
        acc += (p > 0 ? p * p : -p * p) * (tqs_marshall_parity(s, Lx, Ly) ? -1 : 1);
    }
    tqs_basis_free(&B);
    return fabs(acc);
}

int main(int argc, char **argv) {
    int Lx = 4, Ly = 4, json = 0, i, rc, observables = 0;
    const char *svg = NULL;
    tqs_lanczos_options lo;
    tqs_observables o;
    double J1 = 1.0, J2 = 0.5, marshall = NAN;
    tqs_hamiltonian H;
    tqs_ed_result ed;
    flags_prog = "exact";
    for (i = 1; i < argc; i++) {
        if (flags_lattice(argc, argv, &i, &Lx, &Ly)) continue;
        if (flags_real(argc, argv, &i, "--J1", &J1, -1e6, 1e6)) continue;
        if (flags_real(argc, argv, &i, "--J2", &J2, -1e6, 1e6)) continue;
        if (flags_bool(argv, i, "--json", &json) || flags_bool(argv, i, "--observables", &observables) ||
            flags_str(argc, argv, &i, "--svg", &svg)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: exact [--L n | --Lx n --Ly n (4)] [--J1 x (1)] [--J2 x (0.5)] [--json] [--observables [--svg PREFIX]]\n"
                   "Ground-state energy of the periodic J1-J2 model, Sz=0, N <= %d sites; with --observables its\n"
                   "weight with Marshall's sign, spin and dimer correlations, structure factors (--svg: PREFIX-sq.svg, PREFIX-corr.svg).\n", TQS_ED_MAX_SITES);
            return 0;
        }
        flags_die("unknown flag '%s' (try --help)", argv[i]);
    }
    flags_check_lattice(Lx, Ly);
    if (Lx * Ly > TQS_ED_MAX_SITES)
        flags_die("%s: exact diagonalisation handles at most %d sites (got %d x %d)",
                  strcmp(flags_lx_flag, "--L") ? "--Lx/--Ly" : "--L", TQS_ED_MAX_SITES, Lx, Ly);
    if (svg && !observables) flags_die("--svg: needs --observables");
    if (svg) { char probe[1024]; snprintf(probe, sizeof probe, "%s-sq.svg", svg); flags_check_output("--svg", probe); }
    if ((rc = tqs_hamiltonian_init(&H, Lx, Ly, J1, J2)) != 0) flags_die("%s", tqs_last_error());
    memset(&lo, 0, sizeof lo);
    lo.want_vector = observables;
    rc = tqs_exact_ground_state(&ed, &H, &lo);
    if (rc) { fprintf(stderr, "exact: %s\n", tqs_last_error()); tqs_hamiltonian_free(&H); return 1; }
    if (observables && obs_ground_state(&o, &H, &ed)) {
        fprintf(stderr, "exact: --observables: %s\n", tqs_last_error());
        tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
        return 1;
    }
    if (observables) marshall = marshall_sign(&ed, Lx, Ly);
    if (json) {
        printf("{\"Lx\":%d,\"Ly\":%d,\"J1\":%.10g,\"J2\":%.10g,\"energy\":%.10g,\"energy_per_site\":%.10g",
               Lx, Ly, J1, J2, ed.energy, ed.energy / H.lat.N);
        if (observables) { printf(",\"marshall_sign\":%.10g,\"observables\":", marshall); obs_json(stdout, &o); }
        printf("}\n");
    } else {
        printf("%dx%d J1=%g J2=%g: E0 = %.10f, E0/N = %.10f (%d Lanczos steps, dim %zu)\n",
               Lx, Ly, J1, J2, ed.energy, ed.energy / H.lat.N, ed.iterations, ed.dim);
        if (observables) {
            printf("Marshall's sign: sum_s psi(s)^2 sign(psi(s)) (-1)^n_A(s) = %.4f (1: the sign is Marshall's on every s)\n", marshall);
            obs_print(stdout, &o, "observables of the ground state (exact)");
        }
    }
    if (observables) {
        char t[128];
        snprintf(t, sizeof t, "%dx%d J2 = %g, exact ground state", Lx, Ly, J2);
        if (svg && obs_svg(svg, &o, t)) { fprintf(stderr, "exact: --svg: %s\n", plot_last_error()); rc = 1; }
        tqs_observables_free(&o);
    }
    tqs_ed_result_free(&ed);
    tqs_hamiltonian_free(&H);
    return rc ? 1 : 0;
}
