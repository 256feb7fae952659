/*
 * deadline.h - time limits libmicrohttpd does not enforce by itself: a
 * request (request line, headers and body) must arrive whole within
 * request_timeout, and a connection may sit between requests for at most
 * idle_timeout in total.
 *
 * libmicrohttpd's own connection timeout counts inactivity, so a client
 * sending one byte every few seconds (slowloris) keeps a connection, and a
 * worker's memory for it, forever. Here every connection is tracked from
 * accept to close with the phase it is in and since when; a reaper thread
 * looks four times a second and shuts down (shutdown(2), not close: the
 * descriptor stays libmicrohttpd's) any connection that overstays its
 * phase. libmicrohttpd then sees the end of the stream and cleans up as
 * for any client that went away. Connections whose request is being
 * handled (including suspended ones waiting on a write) are never cut.
 *
 * Safety: libmicrohttpd reports a connection closed before it closes the
 * descriptor, and both that report and the reaper's shutdown hold the
 * tracker's lock, so the reaper never touches a descriptor that was
 * closed and reused.
 *
 * Threads: opened/closed from MHD's accepting and cleaning threads; the
 * phase setters from MHD workers (atomics, no lock); the reaper thread of
 * its own.
 */
#ifndef API_DEADLINE_H
#define API_DEADLINE_H

#include <stdint.h>

#include <microhttpd.h>

struct api_deadlines;
struct api_tracked; /* one connection */

/* Starts the reaper. Timeouts in milliseconds. */
struct api_deadlines *api_deadlines_new(uint64_t request_timeout_ms, uint64_t idle_timeout_ms);
/* Stops the reaper (after the daemon: connections must be closed). Accepts NULL. */
void api_deadlines_free(struct api_deadlines *d);

/* MHD_OPTION_NOTIFY_CONNECTION: tracks conn from STARTED to CLOSED through
 * its socket context. cls is the api_deadlines. */
void api_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe);

/* The tracked record of conn (its socket context), or NULL. */
struct api_tracked *api_deadlines_of(struct MHD_Connection *conn);

/* Phases: the request line arrived (receiving until the whole request is
 * read); the request is complete and being handled; the response is done
 * (idle until the next request line). NULL is ignored. */
void api_tracked_receiving(struct api_tracked *t);
void api_tracked_busy(struct api_tracked *t);
void api_tracked_idle(struct api_tracked *t);

#endif
