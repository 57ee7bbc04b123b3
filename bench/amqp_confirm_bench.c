/* bench/amqp_confirm_bench.c - raw AMQP publish rate with publisher confirms (rabbitmq-c 0.11).
 *
 * The yardstick for sluice's publish module: the best a single C client on one connection and
 * one channel gets from the broker when every message must be confirmed. It publishes 16-byte
 * messages to the default exchange with routing key = QUEUE, keeps at most WINDOW unconfirmed
 * messages in flight, and reads basic.ack / basic.nack (honouring `multiple`) with
 * amqp_simple_wait_frame_noblock between publishes. The time runs from the first publish to
 * the last confirm; the rate is confirmed messages per second.
 *
 * usage: amqp_confirm_bench --port PORT [--host 127.0.0.1] [--queue bench]
 *                           [--count N | --duration SECONDS] [--window 1000] [--persistent]
 *                           [--user guest] [--password guest] [--vhost /]
 *   --persistent  delivery_mode 2 (the queue should be durable); default delivery_mode 1
 *   --count N     publish exactly N messages; --duration S: publish for S seconds (default 10)
 * The queue must exist (checked with a passive queue.declare). Loopback hosts only.
 * Output, one line on stdout:
 *   RESULT published=N acked=N nacked=N seconds=T msgs_per_sec=R window=W persistent=0|1
 * Exit status: 0 ok, 1 a nack or a broker/connection error, 2 usage.
 *
 * build: cc -O2 -Wall -o amqp_confirm_bench bench/amqp_confirm_bench.c -lrabbitmq
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define BODY "hello-amqp-12345" /* 16 bytes, like the HTTP rows' payloads */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr,
            "usage: amqp_confirm_bench --port PORT [--host 127.0.0.1] [--queue bench]\n"
            "         [--count N | --duration SECONDS] [--window 1000] [--persistent]\n"
            "         [--user guest] [--password guest] [--vhost /]\n");
    exit(2);
}

static void check_reply(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        fprintf(stderr, "amqp_confirm_bench: %s: %s\n", what, amqp_error_string2(r.library_error));
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *c = (amqp_channel_close_t *)r.reply.decoded;
        fprintf(stderr, "amqp_confirm_bench: %s: channel closed by the broker: %u %.*s\n", what,
                c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *c = (amqp_connection_close_t *)r.reply.decoded;
        fprintf(stderr, "amqp_confirm_bench: %s: connection closed by the broker: %u %.*s\n", what,
                c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
    } else {
        fprintf(stderr, "amqp_confirm_bench: %s failed (reply type %d)\n", what, r.reply_type);
    }
    exit(1);
}

static int is_loopback(const char *h) {
    return !strcmp(h, "localhost") || !strcmp(h, "::1") || !strncmp(h, "127.", 4);
}

/* Confirm bookkeeping. Delivery tags start at 1 after confirm.select and grow by one per
 * publish. state[tag % window] says whether tag is still pending; `lowest` is the lowest tag
 * not yet resolved. At most `window` tags are outstanding (next_tag - lowest <= window), so the
 * ring never wraps onto a pending tag, even if single acks arrive out of order. */
static unsigned char *pending;
static uint64_t window = 1000;
static uint64_t next_tag = 1, lowest = 1;
static uint64_t acked, nacked;

static void resolve(uint64_t tag, int ok) {
    if (tag < lowest || tag >= next_tag || !pending[tag % window]) return;
    pending[tag % window] = 0;
    if (ok)
        acked++;
    else
        nacked++;
}

static void confirm(uint64_t tag, int multiple, int ok) {
    if (tag >= next_tag) {
        fprintf(stderr, "amqp_confirm_bench: confirm for unknown delivery tag %llu\n",
                (unsigned long long)tag);
        exit(1);
    }
    if (multiple) {
        for (uint64_t t = lowest; t <= tag; t++) resolve(t, ok);
    } else {
        resolve(tag, ok);
    }
    while (lowest < next_tag && !pending[lowest % window]) lowest++;
}

static void handle_frame(const amqp_frame_t *f) {
    if (f->frame_type != AMQP_FRAME_METHOD) return;
    switch (f->payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *a = (const amqp_basic_ack_t *)f->payload.method.decoded;
            confirm(a->delivery_tag, a->multiple, 1);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *n = (const amqp_basic_nack_t *)f->payload.method.decoded;
            confirm(n->delivery_tag, n->multiple, 0);
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            const amqp_channel_close_t *c = (const amqp_channel_close_t *)f->payload.method.decoded;
            fprintf(stderr, "amqp_confirm_bench: channel closed by the broker: %u %.*s\n",
                    c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
            exit(1);
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            const amqp_connection_close_t *c =
                (const amqp_connection_close_t *)f->payload.method.decoded;
            fprintf(stderr, "amqp_confirm_bench: connection closed by the broker: %u %.*s\n",
                    c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
            exit(1);
        }
        case AMQP_CONNECTION_BLOCKED_METHOD:
            fprintf(stderr, "amqp_confirm_bench: warning: the broker blocked the connection "
                            "(resource alarm)\n");
            break;
        default:
            break; /* basic.return cannot happen (mandatory=0); ignore anything else */
    }
}

/* Read one frame, waiting at most *tv (NULL: for ever, {0,0}: do not wait).
 * Returns 1 if a frame was handled, 0 on timeout; exits on errors. */
static int read_one(amqp_connection_state_t conn, const struct timeval *tv) {
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(conn, &f, tv);
    if (rc == AMQP_STATUS_TIMEOUT) return 0;
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp_confirm_bench: reading from the broker: %s\n",
                amqp_error_string2(rc));
        exit(1);
    }
    handle_frame(&f);
    return 1;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *queue = "bench", *user = "guest", *password = "guest",
               *vhost = "/";
    int port = 0, persistent = 0;
    long long count = -1;
    double duration = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--persistent")) {
            persistent = 1;
            continue;
        }
        if (!v) usage();
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--queue")) queue = v;
        else if (!strcmp(a, "--count")) count = atoll(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--window")) window = (uint64_t)atoll(v);
        else if (!strcmp(a, "--user")) user = v;
        else if (!strcmp(a, "--password")) password = v;
        else if (!strcmp(a, "--vhost")) vhost = v;
        else usage();
        i++;
    }
    if (port <= 0 || port > 65535 || window < 1 || window > 1000000 || duration <= 0 ||
        count == 0 || count < -1)
        usage();
    if (!is_loopback(host)) {
        fprintf(stderr, "amqp_confirm_bench: refusing non-loopback host '%s'\n", host);
        return 2;
    }
    pending = calloc(window, 1);
    if (!pending) return 1;

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock) return 1;
    int rc = amqp_socket_open(sock, host, port);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp_confirm_bench: connect %s:%d: %s\n", host, port, amqp_error_string2(rc));
        return 1;
    }
    check_reply(amqp_login(conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, password),
                "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 1 /* passive */, 0, 0, 0,
                       amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "queue.declare (passive): does the queue exist?");
    amqp_confirm_select(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "confirm.select");

    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = persistent ? 2 : 1;
    amqp_bytes_t body = {sizeof BODY - 1, (void *)BODY};
    amqp_bytes_t routing_key = amqp_cstring_bytes(queue);
    const struct timeval zero = {0, 0};
    const struct timeval confirm_wait = {30, 0}; /* no confirm for 30 s: the run failed */

    double t0 = now(), stop_at = t0 + duration;
    uint64_t published = 0;
    for (;;) {
        if (count > 0 ? published >= (uint64_t)count : now() >= stop_at) break;
        while (next_tag - lowest >= window) {
            if (!read_one(conn, &confirm_wait)) {
                fprintf(stderr, "amqp_confirm_bench: no confirm within 30 s\n");
                return 1;
            }
        }
        rc = amqp_basic_publish(conn, 1, amqp_empty_bytes, routing_key, 0, 0, &props, body);
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp_confirm_bench: publish: %s\n", amqp_error_string2(rc));
            return 1;
        }
        pending[next_tag % window] = 1;
        next_tag++;
        published++;
        while (read_one(conn, &zero)) {
        }
        amqp_maybe_release_buffers(conn);
    }
    while (lowest < next_tag) {
        if (!read_one(conn, &confirm_wait)) {
            fprintf(stderr, "amqp_confirm_bench: no confirm within 30 s (%llu outstanding)\n",
                    (unsigned long long)(next_tag - lowest));
            return 1;
        }
        amqp_maybe_release_buffers(conn);
    }
    double secs = now() - t0;

    printf("RESULT published=%llu acked=%llu nacked=%llu seconds=%.3f msgs_per_sec=%.0f window=%llu "
           "persistent=%d\n",
           (unsigned long long)published, (unsigned long long)acked, (unsigned long long)nacked,
           secs, (double)acked / secs, (unsigned long long)window, persistent);
    fflush(stdout);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(pending);
    return nacked ? 1 : 0;
}
