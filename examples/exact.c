/* exact.c - ground-state energy of the J1-J2 model by Lanczos (N <= 24).
 *   ./examples/exact --L 4 [--J2 0.5] [--J1 1] [--json]
 * The defaults (4x4, J1 = 1, J2 = 0.5) are those of the other programs. */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"

int main(int argc, char **argv) {
    int Lx = 4, Ly = 4, json = 0, i, rc;
    double J1 = 1.0, J2 = 0.5;
    tqs_hamiltonian H;
    tqs_ed_result ed;
    flags_prog = "exact";
    for (i = 1; i < argc; i++) {
        if (flags_lattice(argc, argv, &i, &Lx, &Ly)) continue;
        if (flags_real(argc, argv, &i, "--J1", &J1, -1e6, 1e6)) continue;
        if (flags_real(argc, argv, &i, "--J2", &J2, -1e6, 1e6)) continue;
        if (flags_bool(argv, i, "--json", &json)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: exact [--L n | --Lx n --Ly n (4)] [--J1 x (1)] [--J2 x (0.5)] [--json]\n"
                   "Ground-state energy of the periodic J1-J2 model, Sz=0, N <= %d sites.\n", TQS_ED_MAX_SITES);
            return 0;
        }
        flags_die("unknown flag '%s' (try --help)", argv[i]);
    }
    flags_check_lattice(Lx, Ly);
    if (Lx * Ly > TQS_ED_MAX_SITES)
        flags_die("%s: exact diagonalisation handles at most %d sites (got %d x %d)",
                  strcmp(flags_lx_flag, "--L") ? "--Lx/--Ly" : "--L", TQS_ED_MAX_SITES, Lx, Ly);
    if ((rc = tqs_hamiltonian_init(&H, Lx, Ly, J1, J2)) != 0) flags_die("%s", tqs_last_error());
    rc = tqs_exact_ground_state(&ed, &H, NULL);
    if (rc) { fprintf(stderr, "exact: %s\n", tqs_last_error()); tqs_hamiltonian_free(&H); return 1; }
    if (json)
        printf("{\"Lx\":%d,\"Ly\":%d,\"J1\":%.10g,\"J2\":%.10g,\"energy\":%.10g,\"energy_per_site\":%.10g}\n",
               Lx, Ly, J1, J2, ed.energy, ed.energy / H.lat.N);
    else
        printf("%dx%d J1=%g J2=%g: E0 = %.10f, E0/N = %.10f (%d Lanczos steps, dim %zu)\n",
               Lx, Ly, J1, J2, ed.energy, ed.energy / H.lat.N, ed.iterations, ed.dim);
    tqs_ed_result_free(&ed);
    tqs_hamiltonian_free(&H);
    return 0;
}
