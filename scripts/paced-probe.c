// paced-probe — response times of paced requests, in µs (httperf's resolution is 0.1 ms).
//
// Usage: paced-probe HOST PORT PATH RATE COUNT [keep-alive]
//   Sends COUNT `GET PATH` requests at RATE per second, each on a new TCP connection (as httperf
//   does by default, and the paper did), or all on one with `keep-alive`. A request's time runs
//   from before connect() to the last byte of the answer (its Content-Length). Prints one line:
//   mean, p50, p90 and p99 in µs. Exits non-zero on a refused connection or a short answer.
// Build: cc -O2 -o paced-probe scripts/paced-probe.c   (see docs/benchmarks-dataplane.md)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int connect_to(const struct sockaddr_in *address) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (const struct sockaddr *)address, sizeof *address) != 0) {
        perror("paced-probe: connect");
        exit(1);
    }
    return fd;
}

// Reads one answer: its head, then Content-Length bytes of body (kept only up to the buffer).
static void read_answer(int fd) {
    static char buffer[1 << 16];
    long have = 0, total = -1;
    for (;;) {
        ssize_t got = read(fd, buffer + (have < (long)sizeof buffer - 4096 ? have : 0), 4096);
        if (got <= 0) {
            fprintf(stderr, "paced-probe: connection closed mid-answer\n");
            exit(1);
        }
        have += got;
        if (total < 0 && have < (long)sizeof buffer - 4096) {
            buffer[have] = 0;
            char *end = strstr(buffer, "\r\n\r\n"), *length = strcasestr(buffer, "\r\ncontent-length:");
            if (end && length) total = (end + 4 - buffer) + atol(length + 17);
        }
        if (total >= 0 && have >= total) return;
    }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: paced-probe HOST PORT PATH RATE COUNT [keep-alive]\n");
        return 2;
    }
    double rate = atof(argv[4]);
    int count = atoi(argv[5]), keep_alive = argc > 6;
    if (rate <= 0 || count <= 0) return 2;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) return 2;
    char request[1024];
    int length = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[3], argv[1]);

    double *times = malloc(count * sizeof *times), start = now_us();
    int fd = -1;
    for (int i = 0; i < count; i++) {
        // Sleep until just before the request is due, then spin: a late wake-up would skew the pace.
        double due = start + i * 1e6 / rate;
        for (double left; (left = due - now_us()) > 0;)
            if (left > 200) usleep((useconds_t)(left - 100));
        double sent = now_us();
        if (fd < 0) fd = connect_to(&address);
        if (write(fd, request, length) != length) return 1;
        read_answer(fd);
        times[i] = now_us() - sent;
        if (!keep_alive) {
            close(fd);
            fd = -1;
        }
    }
    qsort(times, count, sizeof *times, by_value);
    double sum = 0;
    for (int i = 0; i < count; i++) sum += times[i];
    printf("mean %.0f p50 %.0f p90 %.0f p99 %.0f us\n", sum / count, times[count / 2], times[count * 9 / 10],
           times[count * 99 / 100]);
    return 0;
}
