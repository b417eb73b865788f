/*
 * dns_latency: time N sequential UDP DNS queries to one server, one at a time, for bench/proxy.sh.
 *
 *   dns_latency SERVER PORT NAME TYPE N     (TYPE: A or AAAA; SERVER: an IPv4 or IPv6 address)
 *
 * Prints "median_us p99_us min_us max_us lost" over the N round trips (after 200 warm-up queries).
 * Each query carries a new id and waits at most 1 s for the answer with that id; a query with no
 * answer counts as lost and is left out of the times. A round trip is the time from send() to the
 * matching recv() on one connected socket (CLOCK_MONOTONIC): what a stub resolver waits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The query: header (RD), one question NAME TYPE IN. Returns its length. */
static size_t build(unsigned char *q, const char *name, int type) {
    size_t n = 12;
    memset(q, 0, 12);
    q[2] = 0x01; /* RD */
    q[5] = 1;    /* QDCOUNT */
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        q[n++] = (unsigned char)len;
        memcpy(q + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
        if (!dot) break;
    }
    q[n++] = 0;
    q[n++] = 0;
    q[n++] = (unsigned char)type;
    q[n++] = 0;
    q[n++] = 1;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: dns_latency SERVER PORT NAME A|AAAA N\n");
        return 2;
    }
    int port = atoi(argv[2]), type = strcmp(argv[4], "AAAA") == 0 ? 28 : 1, runs = atoi(argv[5]);
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        sl = sizeof *v4;
    } else if (inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        sl = sizeof *v6;
    } else {
        fprintf(stderr, "dns_latency: bad address %s\n", argv[1]);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        perror("dns_latency: socket");
        return 1;
    }
    unsigned char q[512], a[4096];
    size_t qlen = build(q, argv[3], type);
    double *t = calloc(runs, sizeof *t);
    int got = 0, lost = 0;
    unsigned short id = (unsigned short)getpid();
    for (int i = -200; i < runs; i++) {
        id++;
        q[0] = id >> 8;
        q[1] = id & 0xff;
        double start = now_us();
        if (send(fd, q, qlen, 0) < 0) {
            perror("dns_latency: send");
            return 1;
        }
        for (;;) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 1000) <= 0) {
                if (i >= 0) lost++;
                break;
            }
            ssize_t n = recv(fd, a, sizeof a, 0);
            if (n >= 12 && a[0] == q[0] && a[1] == q[1]) {
                if (i >= 0) t[got++] = now_us() - start;
                break;
            }
        }
    }
    if (got == 0) {
        printf("nan nan nan nan %d\n", lost);
        return 1;
    }
    qsort(t, got, sizeof *t, cmp);
    int p99 = (int)(got * 0.99);
    if (p99 >= got) p99 = got - 1;
    printf("%.1f %.1f %.1f %.1f %d\n", t[got / 2], t[p99], t[0], t[got - 1], lost);
    return 0;
}
