/* The nameservers glibc's resolver takes from each file given: one line per file, the
 * addresses of res_ninit's first MAXNS servers (127.0.0.1 alone when the file gives none).
 * Each file is bind-mounted over /etc/resolv.conf in a private mount namespace, on a tmpfs over
 * /etc: a new inode each time, so glibc's change detection reloads it. Needs root.
 * Used by tests/invariants.rs to check the model in tests/model/mod.rs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

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
        struct __res_state st;
        memset(&st, 0, sizeof st);
        if (res_ninit(&st)) {
            printf("error\n");
        } else {
            for (int j = 0; j < st.nscount; j++) {
                char buf[INET6_ADDRSTRLEN] = "?";
                if (st.nsaddr_list[j].sin_family == AF_INET)
                    inet_ntop(AF_INET, &st.nsaddr_list[j].sin_addr, buf, sizeof buf);
                else if (st._u._ext.nsaddrs[j])
                    inet_ntop(AF_INET6, &st._u._ext.nsaddrs[j]->sin6_addr, buf, sizeof buf);
                printf("%s%s", j ? " " : "", buf);
            }
            printf("\n");
            res_nclose(&st);
        }
        if (umount2("/etc/resolv.conf", MNT_DETACH)) { perror("umount"); return 2; }
    }
    return 0;
}
