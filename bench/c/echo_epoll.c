/* A plain C epoll echo server: the baseline of gorust's echo benchmark
 * (crates/gorust/benches/echo.rs). One thread, level-triggered epoll, non-blocking sockets
 * accepted with accept4 and set TCP_NODELAY (as Go's net and every server of the benchmark do),
 * a 4 KiB buffer on the stack, echo what was read; a partial write keeps the rest in a
 * per-connection buffer and waits for EPOLLOUT.
 *
 * With a second argument `et` (the bench's `c-et` server) it is instead built the way issue
 * 3 requires gorust's netpoller to be, with no scheduler:
 * - each connection registered once, edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP;
 * - a read that fills the buffer is followed by another: a short read or EAGAIN shows the
 *   socket drained, unless the peer's FIN, a hang-up or an error has been seen, after which
 *   it reads until 0 or the error (no later edge would come);
 * - each connection owns a heap record with its own 4 KiB buffer, found from the event's
 *   pointer;
 * - a second thread, standing for the monitor, wakes every 10 ms and does nothing;
 * - socket calls are raw system calls, as gorust's are (glibc's wrappers of blocking calls
 *   add cancellation bookkeeping once a process has a second thread).
 *
 *   cc -O2 -pthread -o echo_epoll echo_epoll.c && ./echo_epoll 7000 [et]   # prints "ready"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAXFD 65536
struct pending { char *buf; size_t len, off; };
static struct pending out[MAXFD];

/* Sends small writes at once, without waiting for the peer's ACK (Nagle's algorithm off). */
static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void closefd(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    free(out[fd].buf);
    out[fd].buf = NULL;
    out[fd].len = out[fd].off = 0;
    close(fd);
}

/* `et` mode: one record per connection, found from the event. */
struct conn {
    int fd;
    int readable;    /* an EPOLLIN edge came and no read has come up short since */
    int closing;     /* the peer's FIN, a hang-up or an error was reported: read to the end */
    size_t len, off; /* unsent bytes of buf, from off to len */
    char buf[4096];
};

static void *monitor(void *arg) {
    (void)arg;
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (;;) nanosleep(&tick, NULL);
    return NULL;
}

/* Sends what is pending: 1 when all is sent, 0 when the socket is full, -1 on an error. */
static int conn_flush(struct conn *c) {
    while (c->off < c->len) {
        ssize_t w = syscall(SYS_sendto, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL,
                            NULL, 0);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->off += w;
    }
    c->len = c->off = 0;
    return 1;
}

/* Echoes until the socket is drained or full; -1 when the connection is done. */
static int conn_serve(struct conn *c) {
    int f = conn_flush(c);
    if (f <= 0) return f;
    while (c->readable) {
        ssize_t r = syscall(SYS_recvfrom, c->fd, c->buf, sizeof c->buf, 0, NULL, NULL);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -1;
            c->readable = 0;
            break;
        }
        if (r == 0) return -1;
        if ((size_t)r < sizeof c->buf && !c->closing) c->readable = 0;
        c->len = r;
        c->off = 0;
        f = conn_flush(c);
        if (f <= 0) return f;
    }
    return 0;
}

static void et_loop(int ep, int l) {
    pthread_t t;
    if (pthread_create(&t, NULL, monitor, NULL)) { perror("pthread_create"); exit(1); }
    struct epoll_event evs[256];
    for (;;) {
        int n = syscall(SYS_epoll_pwait, ep, evs, 256, -1, NULL, 0);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    nodelay(fd);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (nc == NULL) { close(fd); continue; }
                    nc->fd = fd;
                    struct epoll_event ce = {
                        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce)) { close(fd); free(nc); }
                }
                continue;
            }
            uint32_t e = evs[i].events;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->closing = 1;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable = 1;
            if (conn_serve(c) < 0) {
                close(c->fd); /* closing drops the registration */
                free(c);
            }
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    int et = argc > 2 && strcmp(argv[2], "et") == 0;
    if (argc > 2 && !et) { fprintf(stderr, "usage: %s PORT [et]\n", argv[0]); return 2; }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) { perror("listen"); return 1; }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (et) ev.data.ptr = NULL; else ev.data.fd = l;
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    printf("ready\n");
    fflush(stdout);
    if (et) { et_loop(ep, l); return 0; }
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (;;) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if (c >= MAXFD) { close(c); continue; }
                    nodelay(c);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                struct pending *p = &out[fd];
                ssize_t w = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) { closefd(ep, fd); continue; }
                if (w > 0) p->off += w;
                if (p->off == p->len) {
                    p->len = p->off = 0;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                closefd(ep, fd);
                continue;
            }
            ssize_t w = send(fd, buf, r, MSG_NOSIGNAL);
            if (w < 0) { if (errno != EAGAIN) { closefd(ep, fd); continue; } w = 0; }
            if (w < r) {
                struct pending *p = &out[fd];
                p->buf = realloc(p->buf, r - w);
                memcpy(p->buf, buf + w, r - w);
                p->len = r - w;
                p->off = 0;
                struct epoll_event ce = {.events = EPOLLOUT, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
            }
        }
    }
}
