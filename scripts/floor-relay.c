/* floor-relay — the least work any relay hop can do: a reference floor for scripts/bench-dataplane.
 *
 * Usage: floor-relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT     (LISTEN_PORT 0: any free port)
 *
 * Listens on 127.0.0.1:LISTEN_PORT; for each accepted connection it opens one TCP connection to
 * UPSTREAM_HOST:UPSTREAM_PORT (an IPv4 address) and copies bytes both ways until either side
 * closes, then closes both. No HTTP parsing, no pooling: one thread, edge-triggered epoll,
 * non-blocking sockets, TCP_NODELAY, read() into a 256 KiB buffer per direction and write() it out.
 * Once listening it prints "floor-relay listening on 127.0.0.1:PORT -> HOST:PORT" on stdout.
 * Build: cc -O2 -o floor-relay scripts/floor-relay.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ (256 * 1024)
#define MAXEV 256

struct dir { char buf[BUFSZ]; size_t off, len; };      /* bytes still to write: buf[off..len) */
struct pair;
struct end { struct pair *p; int fd; };                 /* epoll's data.ptr: one per socket */
struct pair { struct end c, u; struct dir c2u, u2c; int dead; };

static int epfd;
static struct sockaddr_in up_addr;

static void die(const char *m) { perror(m); exit(1); }
static void nodelay(int fd) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

/* Moves bytes src → dst until either would block (0), or src ends or fails (-1). Pending bytes
 * go out first, so a write that would block just waits for the next EPOLLOUT on dst. */
static int pump(struct dir *d, int src, int dst) {
    for (;;) {
        while (d->off < d->len) {
            ssize_t w = write(dst, d->buf + d->off, d->len - d->off);
            if (w < 0) { if (errno == EAGAIN) return 0; if (errno == EINTR) continue; return -1; }
            d->off += w;
        }
        d->off = d->len = 0;
        ssize_t r = read(src, d->buf, BUFSZ);
        if (r < 0) { if (errno == EAGAIN) return 0; if (errno == EINTR) continue; return -1; }
        if (r == 0) return -1;                          /* EOF: the pair closes */
        d->len = r;
    }
}

static void close_pair(struct pair *p) {
    close(p->c.fd);                                     /* closing also removes them from epoll */
    close(p->u.fd);
    free(p);
}

/* Accepts every pending client and pairs it with a new upstream connection. */
static void accept_all(int lfd) {
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (cfd < 0) { if (errno != EAGAIN && errno != EINTR) perror("accept"); return; }
        int ufd = socket(AF_INET, SOCK_STREAM, 0);
        /* A blocking connect: on loopback it completes at once. */
        if (ufd < 0 || connect(ufd, (struct sockaddr *)&up_addr, sizeof up_addr) < 0) {
            perror("connect upstream"); close(cfd); if (ufd >= 0) close(ufd); continue;
        }
        fcntl(ufd, F_SETFL, fcntl(ufd, F_GETFL) | O_NONBLOCK);
        nodelay(cfd); nodelay(ufd);
        struct pair *p = calloc(1, sizeof *p);
        if (!p) die("calloc");
        p->c = (struct end){ p, cfd }; p->u = (struct end){ p, ufd };
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
        ev.data.ptr = &p->c; epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev);
        ev.data.ptr = &p->u; epoll_ctl(epfd, EPOLL_CTL_ADD, ufd, &ev);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: floor-relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    up_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
    if (inet_pton(AF_INET, argv[2], &up_addr.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[2]); return 2; }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof la;
    if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    if (getsockname(lfd, (struct sockaddr *)&la, &alen) < 0) die("getsockname");  /* the real port */
    if ((epfd = epoll_create1(0)) < 0) die("epoll_create1");
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };       /* NULL: the listener */
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    printf("floor-relay listening on 127.0.0.1:%d -> %s:%s\n", ntohs(la.sin_port), argv[2], argv[3]);
    fflush(stdout);

    struct epoll_event evs[MAXEV];
    for (;;) {
        int n = epoll_wait(epfd, evs, MAXEV, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        /* Pairs close after the batch: both sockets of a pair may be in it. */
        struct pair *dead[MAXEV]; int nd = 0;
        for (int i = 0; i < n; i++) {
            struct end *e = evs[i].data.ptr;
            if (!e) { accept_all(lfd); continue; }
            struct pair *p = e->p;
            if (p->dead) continue;
            /* Edge-triggered: any readiness on either socket pumps both directions. */
            int r1 = pump(&p->c2u, p->c.fd, p->u.fd), r2 = pump(&p->u2c, p->u.fd, p->c.fd);
            if (r1 < 0 || r2 < 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) { p->dead = 1; dead[nd++] = p; }
        }
        for (int i = 0; i < nd; i++) close_pair(dead[i]);
    }
}
