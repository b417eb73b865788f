/* The nameservers musl's resolver takes from each file given, as glibc.c does for glibc: one
 * line per file. Calls musl's internal __get_resolv_conf, which a static link against musl's
 * libc.a can reach (hidden visibility only hides it from dynamic linking); the structures are
 * those of musl 1.2's src/network/lookup.h. Build with musl-gcc -static. Needs root. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

struct address { int family; unsigned scopeid; uint8_t addr[16]; int sortkey; };
struct resolvconf { struct address ns[3]; unsigned nns, attempts, ndots; unsigned timeout; };
int __get_resolv_conf(struct resolvconf *, char *, size_t);

int main(int argc, char **argv) {
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("oracle", "/etc", "tmpfs", 0, "size=64k")) {
        perror("mount namespace");
        return 2;
    }
    int fd = open("/etc/resolv.conf", O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { perror("/etc/resolv.conf"); return 2; }
    close(fd);
    for (int i = 1; i < argc; i++) {
        if (mount(argv[i], "/etc/resolv.conf", NULL, MS_BIND, NULL)) { perror(argv[i]); return 2; }
        struct resolvconf conf;
        char search[256];
        if (__get_resolv_conf(&conf, search, sizeof search) < 0) {
            printf("error\n");
        } else {
            for (unsigned j = 0; j < conf.nns; j++) {
                char buf[INET6_ADDRSTRLEN] = "?";
                inet_ntop(conf.ns[j].family, conf.ns[j].addr, buf, sizeof buf);
                printf("%s%s", j ? " " : "", buf);
            }
            printf("\n");
        }
        if (umount2("/etc/resolv.conf", MNT_DETACH)) { perror("umount"); return 2; }
    }
    return 0;
}
