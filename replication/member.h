/*
 * member.h - a node's part in its cluster: a thread that beacons to the
 * meta server every fd_beacon_ms with the node's address, roles, the map
 * version it has and the replicas it hosts, and applies the map meta
 * answers with when the node's is older (repl_registry_apply_map). The
 * beacon is the whole join: a new node is known once meta has heard it.
 *
 * Threads: the member thread beacons and applies maps (it may block on
 * RocksDB opens); repl_member_meta_reachable from any thread (atomic).
 */
#ifndef REPL_MEMBER_H
#define REPL_MEMBER_H

#include "replication/cluster.h"
#include "replication/peer.h"
#include "replication/registry.h"

struct repl_member;

/* Starts beaconing for the node at cfg->advertise to cfg's meta server.
 * cfg, peer and reg are borrowed and must outlive the member. */
int repl_member_start(const struct repl_cluster_config *cfg, const struct repl_peer_config *peer,
                      struct repl_registry *reg, struct repl_member **out);
void repl_member_stop(struct repl_member *m); /* accepts NULL */

/* Whether meta answered a beacon within the last fd_grace_ms. */
bool repl_member_meta_reachable(const struct repl_member *m);

/* Waiting for a newer map: fn(arg, true) runs once a map newer than
 * version is applied, or fn(arg, false) once deadline_ms (cellar_mono_ms)
 * passes, whichever comes first, exactly once, on the member thread. With
 * kick the member beacons at once rather than at its next beat (the map
 * is known to be stale); without, the wait is also a timer. fn must not
 * block. A member that is stopping calls fn(arg, false) for every
 * waiter. */
typedef void (*repl_map_wait_fn)(void *arg, bool newer);
void repl_member_wait_map(struct repl_member *m, uint64_t version, uint64_t deadline_ms, bool kick,
                          repl_map_wait_fn fn, void *arg);

#endif
