/* echo_client: the load generator of gocore's network benchmarks (E1, E4).
 *
 * One compiled client for every server, so that the client is the same for
 * all of them and is not the bottleneck: a single thread, an epoll loop,
 * non-blocking sockets, no allocation on the request path.  The runner
 * (gocore/bench/netbench.py) builds it with `cc -O2` and pins it to a core
 * other than the server's.
 *
 *   echo_client e1 HOST PORT CONNS SIZE WARMUP_S DURATION_S SRC_FIRST SRC_COUNT
 *       Closed loop: CONNS connections each send SIZE bytes, wait for the
 *       whole echo, check every byte, and send again at once.  Requests that
 *       complete during the first WARMUP_S seconds are not counted; those
 *       completing in the next DURATION_S seconds are counted and their
 *       latency (send of the first byte -> receipt of the last) recorded.
 *       Prints one line of JSON: requests, seconds, rps, p50/p99/p999/max us.
 *
 *   echo_client hold HOST PORT SRC_FIRST SRC_COUNT
 *       E4: reads commands on stdin, one per line, answers on stdout:
 *         open K        open K more connections, each doing one 64-byte echo
 *                       round trip (so the server has certainly accepted it
 *                       and its handler waits in read); at most 256 at once
 *                       in progress; answers "held TOTAL".
 *         trickle R T   for T seconds, every 1/R s send 64 bytes on a
 *                       randomly chosen held connection that is idle, and
 *                       time the echo; answers "trickle N US1,US2,..." with
 *                       every latency in microseconds.
 *         quit          close everything and exit 0.
 *
 * Source addresses: connection i binds 127.0.0.(SRC_FIRST + i % SRC_COUNT)
 * with IP_BIND_ADDRESS_NO_PORT, so the ephemeral port is picked at connect
 * time per 4-tuple and the ~28,000 ports of one source address are not the
 * ceiling: this is how one machine opens 100,000 loopback connections.
 *
 * Any error (connect refused, reset, a wrong byte echoed, EOF) prints
 * "error: ..." on stderr and exits 1: a benchmark figure is never reported
 * from a run whose echoes were wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HOLD_MSG 64
#define MAX_CONNECTING 256

static void die(const char *what, int err) {
    fprintf(stderr, "error: %s: %s\n", what, err ? strerror(err) : "failed");
    exit(1);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One connection.  Owned by the single client thread: no locking. */
typedef struct {
    int fd;
    int state;          /* 0 connecting, 1 idle (no request), 2 in a request */
    uint32_t size;      /* bytes of the current request */
    uint32_t sent;      /* bytes of the request written so far */
    uint32_t got;       /* bytes of the echo received so far */
    uint64_t seq;       /* request number on this connection */
    uint64_t t_send;    /* when the request's first byte was written */
    unsigned char *buf; /* the request's bytes: echoes are compared to it */
} conn_t;

enum { CONNECTING = 0, IDLE = 1, BUSY = 2 };

static struct sockaddr_in server;
static int src_first = 2, src_count = 1;
static int ep;
static unsigned char scratch[65536];

/* Latency samples in ns, grown as needed (not on the request path often:
 * doubling means a handful of reallocs per run). */
static uint64_t *lat;
static size_t nlat, caplat;

static void record(uint64_t ns) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("realloc", ENOMEM);
    }
    lat[nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(double p) {  /* nearest-rank percentile of sorted lat */
    if (!nlat) return 0;
    size_t k = (size_t)(p / 100.0 * nlat + 0.999999);
    if (k < 1) k = 1;
    if (k > nlat) k = nlat;
    return lat[k - 1] / 1000.0;
}

static void set_events(conn_t *c, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl MOD", errno);
}

static void open_conn(conn_t *c, long index) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src_count > 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(src_first + index % src_count));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind source address", errno);
    }
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS)
        die("connect", errno);
    c->fd = fd;
    c->state = CONNECTING;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl ADD", errno);
}

/* Fill the request: an 8-byte sequence number, then a pattern that depends
 * on it, so a stale or misrouted echo cannot pass the comparison. */
static void start_request(conn_t *c, uint32_t size) {
    c->seq++;
    c->size = size;
    c->sent = c->got = 0;
    memcpy(c->buf, &c->seq, size < 8 ? size : 8);
    if (size > 8) memset(c->buf + 8, (int)('a' + c->seq % 26), size - 8);
    c->state = BUSY;
    c->t_send = now_ns();
}

/* Write what can be written now; returns 1 if the request is fully sent. */
static int push(conn_t *c) {
    while (c->sent < c->size) {
        ssize_t n = write(c->fd, c->buf + c->sent, c->size - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) return 0;
            if (errno == EINTR) continue;
            die("write", errno);
        }
        c->sent += (uint32_t)n;
    }
    return 1;
}

/* Read what is there; returns 1 when the whole echo has arrived. */
static int pull(conn_t *c) {
    for (;;) {
        size_t want = c->size - c->got;
        if (want == 0) return 1;
        if (want > sizeof scratch) want = sizeof scratch;
        ssize_t n = read(c->fd, scratch, want);
        if (n < 0) {
            if (errno == EAGAIN) return 0;
            if (errno == EINTR) continue;
            die("read", errno);
        }
        if (n == 0) die("server closed the connection", 0);
        if ((uint32_t)n > c->sent - c->got || memcmp(scratch, c->buf + c->got, (size_t)n) != 0)
            die("echo differs from what was sent", 0);
        c->got += (uint32_t)n;
    }
}

static void connected(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) die("connect", err);
    c->state = IDLE;
}

static void parse_server(const char *host, const char *port) {
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) die("HOST must be an IPv4 literal", 0);
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- E1: closed-loop echo -------------------------------------------- */

static int run_e1(int nconns, uint32_t size, double warmup, double duration) {
    conn_t *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *bufs = malloc((size_t)nconns * size);
    if (!conns || !bufs) die("malloc", ENOMEM);
    for (int i = 0; i < nconns; i++) {
        conns[i].buf = bufs + (size_t)i * size;
        open_conn(&conns[i], i);
    }
    struct epoll_event evs[512];
    int pending = nconns;               /* still connecting */
    while (pending) {
        int n = epoll_wait(ep, evs, 512, 10000);
        if (n < 0 && errno != EINTR) die("epoll_wait", errno);
        if (n == 0) die("connect: timed out after 10 s", 0);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state != CONNECTING) continue;
            connected(c);
            set_events(c, EPOLLIN);
            pending--;
        }
    }
    uint64_t t0 = now_ns();
    uint64_t t_measure = t0 + (uint64_t)(warmup * 1e9);
    uint64_t t_end = t_measure + (uint64_t)(duration * 1e9);
    uint64_t count = 0;
    for (int i = 0; i < nconns; i++) {
        start_request(&conns[i], size);
        if (!push(&conns[i])) set_events(&conns[i], EPOLLIN | EPOLLOUT);
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 512, 10000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait", errno);
        }
        uint64_t t = now_ns();
        if (t >= t_end) break;
        if (n == 0) die("no echo for 10 s: the server stalled", 0);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && c->sent < c->size && push(c))
                set_events(c, EPOLLIN);
            if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            if (!pull(c)) continue;
            uint64_t done = now_ns();
            if (done >= t_measure && done < t_end) {
                count++;
                record(done - c->t_send);
            }
            start_request(c, size);
            if (!push(c)) set_events(c, EPOLLIN | EPOLLOUT);
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    printf("{\"conns\": %d, \"size\": %u, \"requests\": %llu, \"seconds\": %.3f, "
           "\"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
           "\"max_us\": %.1f}\n",
           nconns, size, (unsigned long long)count, duration, count / duration,
           pct_us(50), pct_us(99), pct_us(99.9), nlat ? lat[nlat - 1] / 1000.0 : 0.0);
    return 0;
}

/* ---- E4: hold idle connections, then a trickle ----------------------- */

static conn_t **held;          /* every connection opened by `open` */
static long nheld, capheld;
static long busy;              /* connections connecting or in a round trip */

static void hold_step(conn_t *c, uint32_t events) {
    if (c->state == CONNECTING) {
        connected(c);
        start_request(c, HOLD_MSG);
        if (push(c)) set_events(c, EPOLLIN);
        else set_events(c, EPOLLIN | EPOLLOUT);
        return;
    }
    if ((events & EPOLLOUT) && c->sent < c->size && push(c)) set_events(c, EPOLLIN);
    if (c->state == BUSY && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && pull(c)) {
        c->state = IDLE;
        busy--;
        if (c->t_send) record(now_ns() - c->t_send);
    } else if (c->state == IDLE && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        /* An idle connection must stay silent: read to find EOF or reset. */
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n == 0) die("server closed an idle connection", 0);
        if (n > 0) die("server sent unrequested bytes", 0);
        if (errno != EAGAIN) die("read on an idle connection", errno);
    }
}

static void hold_poll(int timeout_ms) {
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return;
        die("epoll_wait", errno);
    }
    for (int i = 0; i < n; i++) hold_step(evs[i].data.ptr, evs[i].events);
}

static void hold_open(long k) {
    long target = nheld + k;
    if (target > capheld) {
        capheld = target;
        held = realloc(held, (size_t)capheld * sizeof *held);
        if (!held) die("realloc", ENOMEM);
    }
    uint64_t last_progress = now_ns();
    long last_busy = -1;
    while (nheld < target || busy) {
        while (nheld < target && busy < MAX_CONNECTING) {
            conn_t *c = calloc(1, sizeof *c);
            if (!c) die("calloc", ENOMEM);
            c->buf = malloc(HOLD_MSG);
            if (!c->buf) die("malloc", ENOMEM);
            open_conn(c, nheld);
            held[nheld++] = c;
            busy++;
        }
        long before = busy;
        hold_poll(100);
        uint64_t t = now_ns();
        if (busy != before || busy != last_busy) last_progress = t;
        last_busy = busy;
        if (t - last_progress > 30000000000ull) die("open: no progress for 30 s", 0);
    }
    nlat = 0;  /* the opening round trips are not trickle samples */
    printf("held %ld\n", nheld);
    fflush(stdout);
}

static void hold_trickle(double rate, double seconds) {
    if (nheld == 0) die("trickle with no connection held", 0);
    nlat = 0;
    uint64_t t0 = now_ns(), period = (uint64_t)(1e9 / rate);
    uint64_t t_end = t0 + (uint64_t)(seconds * 1e9), next = t0;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ t0;
    while (now_ns() < t_end || busy) {
        uint64_t t = now_ns();
        while (t < t_end && next <= t) {
            next += period;
            /* xorshift64: a random held connection; skip busy ones */
            for (int tries = 0; tries < 16; tries++) {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                conn_t *c = held[rng % (uint64_t)nheld];
                if (c->state != IDLE) continue;
                start_request(c, HOLD_MSG);
                busy++;
                if (!push(c)) set_events(c, EPOLLIN | EPOLLOUT);
                break;
            }
        }
        long wait_ms = 1;
        if (t < t_end && next > t) wait_ms = (long)((next - t + 999999) / 1000000);
        hold_poll(wait_ms);
        if (now_ns() > t_end + 10000000000ull) die("trickle: an echo took over 10 s", 0);
    }
    printf("trickle %zu ", nlat);
    for (size_t i = 0; i < nlat; i++) printf(i ? ",%.1f" : "%.1f", lat[i] / 1000.0);
    printf("\n");
    fflush(stdout);
    nlat = 0;
}

static int run_hold(void) {
    /* stdin is read with plain blocking fgets between commands: while a
     * command runs, the epoll loop owns the thread. */
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        long k;
        double r, s;
        if (sscanf(line, "open %ld", &k) == 1) hold_open(k);
        else if (sscanf(line, "trickle %lf %lf", &r, &s) == 2) hold_trickle(r, s);
        else if (strncmp(line, "quit", 4) == 0) break;
        else die("unknown command", 0);
    }
    return 0;
}

int main(int argc, char **argv) {
    raise_nofile();
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1", errno);
    if (argc == 10 && strcmp(argv[1], "e1") == 0) {
        parse_server(argv[2], argv[3]);
        int nconns = atoi(argv[4]);
        long size = atol(argv[5]);
        src_first = atoi(argv[8]);
        src_count = atoi(argv[9]);
        if (nconns < 1 || size < 1 || size > 1 << 20) die("bad CONNS or SIZE", 0);
        return run_e1(nconns, (uint32_t)size, atof(argv[6]), atof(argv[7]));
    }
    if (argc == 6 && strcmp(argv[1], "hold") == 0) {
        parse_server(argv[2], argv[3]);
        src_first = atoi(argv[4]);
        src_count = atoi(argv[5]);
        return run_hold();
    }
    fprintf(stderr,
            "usage: echo_client e1 HOST PORT CONNS SIZE WARMUP_S DURATION_S SRC_FIRST SRC_COUNT\n"
            "       echo_client hold HOST PORT SRC_FIRST SRC_COUNT  (commands on stdin)\n");
    return 2;
}
