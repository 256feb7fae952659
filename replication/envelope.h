/*
 * envelope.h - several relayed requests in one node-to-node exchange: the
 * body of POST /internal/v1/relay and of its answer. A node's forwarder
 * packs the requests it has queued for one peer at the same moment into
 * one envelope (replication/forwarder.c); the peer serves each as if it
 * had come alone and answers them in order in one envelope (api/relay.c).
 *
 * The body is a sequence of fields, each a 4-byte little-endian length
 * and that many bytes. A request is four fields: method, target (path and
 * query as the client sent them), header lines ("Name: value\r\n" each),
 * body. An answer is three: status (three decimal digits), header lines,
 * body.
 *
 * Threads: pure functions; any thread.
 */
#ifndef REPL_ENVELOPE_H
#define REPL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cellar.h"

#define REPL_ENVELOPE_REQUEST_FIELDS 4
#define REPL_ENVELOPE_ANSWER_FIELDS 3

/* Appends one field. */
void repl_envelope_put(struct cellar_buf *b, const void *data, size_t len);

struct repl_envelope_reader {
    const unsigned char *p, *end;
};

void repl_envelope_reader_init(struct repl_envelope_reader *r, const void *data, size_t len);
/* The next field (borrowed from the body), or false at the end or when
 * what is left is not a whole field (*bad then set). */
bool repl_envelope_get(struct repl_envelope_reader *r, const char **data, size_t *len, bool *bad);

#endif
