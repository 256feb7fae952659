/*
 * watchdog.h - the systemd watchdog: ping WATCHDOG=1 only while the node
 * really works.
 *
 * When systemd sets WATCHDOG_USEC (WatchdogSec= in the unit) the node must
 * send WATCHDOG=1 more often than that, or systemd aborts and restarts it.
 * A timer that pings unconditionally would keep a wedged node alive, so
 * each ping is earned: at half the interval the main thread checks that
 *   - every partition writer has gone round its loop within the last
 *     interval (repl_registry_writers_alive; idle writers beat too), and
 *   - the HTTP workers answer: a GET /healthz sent to the node's own
 *     listening socket over loopback is answered 200 within a short timeout.
 * Only then does it ping. A failed check is logged once when it starts
 * failing and once when it recovers, so the journal says why the pings
 * stopped.
 *
 * Known gap, by design: when the server is at http_connection_limit, the
 * probe waits in the listen backlog like any client; such a failure is not
 * held against the node (it is busy, not wedged) and only the writer check
 * counts. A node wedged with every connection held open is therefore caught
 * by its writers, not by HTTP.
 *
 * Threads: main thread only (it owns the timing and calls sd_notify).
 */
#ifndef SVC_WATCHDOG_H
#define SVC_WATCHDOG_H

#include "api/server.h"
#include "common/cellar.h"
#include "replication/registry.h"

/* The interval systemd asked for, in microseconds, or 0 when the watchdog
 * is off (no WATCHDOG_USEC, or WATCHDOG_PID names another process). */
uint64_t svc_watchdog_interval_us(void);

/* How often writers should beat for a watchdog of interval_us: a quarter
 * of the interval, clamped to 50..1000 ms. */
uint64_t svc_watchdog_heartbeat_ms(uint64_t interval_us);

struct svc_watchdog;

/* Starts watching srv and reg (both borrowed; they must outlive wd).
 * connection_limit is the server's, for the saturation rule above. *out is
 * NULL when interval_us is 0 (then the other calls do nothing). */
int svc_watchdog_new(uint64_t interval_us, struct api_server *srv, unsigned connection_limit,
                     struct repl_registry *reg, struct svc_watchdog **out);
void svc_watchdog_free(struct svc_watchdog *wd); /* accepts NULL */

/* Runs the check and pings when a ping is due. Returns how many ms until
 * the next one is due (UINT64_MAX without a watchdog), so the caller can
 * sleep that long. */
uint64_t svc_watchdog_tick(struct svc_watchdog *wd);

#endif
