/* How many threads the OpenMP loops of the Cython kernels ask for.
 *
 * Every kernel cuts its work into a fixed number of chunks, chosen by the Python layer from the
 * image size and the thread setting, never from the machine's load: results depend on the chunks
 * only, not on which thread runs which chunk. Normally each chunk gets its own thread.
 *
 * libgomp's threads spin at a loop's end waiting for the others. When other processes keep the
 * CPUs busy, a thread woken for the loop can wait a whole scheduler slice for a CPU while the
 * thread that started the loop spins for it, so that a call lasts one or more scheduler slices
 * instead of its own work. Each loop therefore notes when every thread entered it: one that entered more than MEDFEAT_LATE seconds
 * after the start means that the CPUs are taken, and the following loops run all their chunks on
 * the calling thread for a while (MEDFEAT_HOLD seconds, doubled each time the team is late again,
 * up to MEDFEAT_HOLD_MAX) before the team is tried again. On an idle machine even threads woken
 * from sleep enter far sooner than MEDFEAT_LATE.
 *
 * The state is per module and shared by all calling threads; racing updates of a few doubles can
 * only make a loop use one thread more or less, never change a result.
 */
#ifndef MEDFEAT_TEAM_H
#define MEDFEAT_TEAM_H

#include <time.h>

#define MEDFEAT_MAX_TEAM 256
#define MEDFEAT_LATE 1e-3
#define MEDFEAT_HOLD 0.05
#define MEDFEAT_HOLD_MAX 1.0

static double medfeat_serial_until = 0.0;
static double medfeat_hold = MEDFEAT_HOLD;
static double medfeat_last_late = 0.0; /* the latest entry of the last loop with a team */

static double medfeat_now(void) {
#if defined(CLOCK_MONOTONIC) && !defined(_WIN32)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
    return 0.0; /* no monotonic clock: a team is never found late */
}

/* Threads to ask for a loop over nchunks chunks; *t0 receives the loop's start time and
   entered[0:team] are reset for medfeat_team_done. */
static int medfeat_team(Py_ssize_t nchunks, double* t0, double* entered) {
    int team, k;
    *t0 = medfeat_now();
    if (nchunks <= 1 || *t0 < medfeat_serial_until)
        return 1;
    team = nchunks < MEDFEAT_MAX_TEAM ? (int)nchunks : MEDFEAT_MAX_TEAM;
    for (k = 0; k < team; k++)
        entered[k] = -1.0; /* a thread the runtime did not give stays -1 */
    return team;
}

/* After a loop run by `team` threads, which noted their entry times in entered[]. */
static void medfeat_team_done(int team, double t0, const double* entered) {
    int k;
    double late = 0.0;
    if (team <= 1)
        return;
    for (k = 0; k < team; k++)
        if (entered[k] - t0 > late)
            late = entered[k] - t0;
    medfeat_last_late = late;
    if (late > MEDFEAT_LATE) {
        medfeat_serial_until = medfeat_now() + medfeat_hold;
        medfeat_hold = medfeat_hold * 2 < MEDFEAT_HOLD_MAX ? medfeat_hold * 2 : MEDFEAT_HOLD_MAX;
    } else {
        medfeat_hold = MEDFEAT_HOLD;
    }
}

/* For tests: forget any lateness (or, with serial, run on the calling thread from now on until
   the next call with serial = 0). */
static void medfeat_team_reset(int serial) {
    medfeat_serial_until = serial ? 1e300 : 0.0;
    medfeat_hold = MEDFEAT_HOLD;
}

/* For diagnostics: (seconds the loops still run on one thread, the next hold, the last lateness) */
static void medfeat_team_state(double* state) {
    double left = medfeat_serial_until - medfeat_now();
    state[0] = left > 0.0 ? left : 0.0;
    state[1] = medfeat_hold;
    state[2] = medfeat_last_late;
}

#endif
