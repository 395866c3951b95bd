/* A plain C epoll echo server: the baseline of gorust's echo benchmark
 * (crates/gorust/benches/echo.rs). One thread, level-triggered epoll, non-blocking sockets
 * accepted with accept4, a 4 KiB buffer on the stack, echo what was read; a partial write
 * keeps the rest in a per-connection buffer and waits for EPOLLOUT.
 *
 *   cc -O2 -o echo_epoll echo_epoll.c && ./echo_epoll 7000     # prints "ready"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
struct pending { char *buf; size_t len, off; };
static struct pending out[MAXFD];

static void closefd(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    free(out[fd].buf);
    out[fd].buf = NULL;
    out[fd].len = out[fd].off = 0;
    close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) { perror("listen"); return 1; }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    printf("ready\n");
    fflush(stdout);
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
