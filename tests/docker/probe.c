/*
 * probe: the one program inside the end-to-end suite's containers (tests/docker.rs).
 *
 * Built twice from this source: with gcc against glibc (dynamic; its libraries are copied into
 * the image) and with musl-gcc (static). It runs a list of steps, left to right, and prints one
 * line per fact so the test can read them from the container's output:
 *
 *   file PATH          "file PATH inode=N mtime=S.NS" then the content between "--- begin PATH" and
 *                      "--- end PATH" (the content is printed as it is, with a final newline added
 *                      when it lacks one: the test compares what it reads against the host's copy)
 *   lookup 6|any NAME  getaddrinfo(NAME) with AF_INET6 or AF_UNSPEC and AI_ADDRCONFIG; prints
 *                      "lookup family=F name=NAME ms=T status=ok addrs=A,B" or "status=error:..."
 *   self               "self pid=N ppid=N uid=N gid=N groups=G,H home=HOME"
 *   ps                 "proc pid=N ppid=N comm=NAME" for every process it can see
 *   wait               "ready", then records each signal ("signal NAME from=PID") until SIGTERM,
 *                      on which it prints "exiting 42" and exits 42
 *   sleep MS           sleeps MS milliseconds
 *   exec PROG ARG...   execs the rest of the command line
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    printf("error %s: %s\n", what, strerror(errno));
    exit(70);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void show_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) die(path);
    printf("file %s inode=%llu mtime=%lld.%09ld\n", path, (unsigned long long)st.st_ino,
           (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    printf("--- begin %s\n", path);
    char buf[4096];
    size_t n, total = 0;
    int last = '\n';
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        fwrite(buf, 1, n, stdout);
        last = buf[n - 1];
        total += n;
    }
    fclose(f);
    if (total > 0 && last != '\n') putchar('\n');
    printf("--- end %s\n", path);
}

static void lookup(const char *family, const char *name) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = strcmp(family, "6") == 0 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    double start = now_ms();
    int rc = getaddrinfo(name, NULL, &hints, &res);
    double ms = now_ms() - start;
    printf("lookup family=%s name=%s ms=%.1f ", family, name, ms);
    if (rc != 0) {
        printf("status=error:%s\n", gai_strerror(rc));
        return;
    }
    printf("status=ok addrs=");
    const char *sep = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *addr = ai->ai_family == AF_INET6
            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, addr, text, sizeof text);
        printf("%s%s", sep, text);
        sep = ",";
    }
    printf("\n");
    freeaddrinfo(res);
}

static void self(void) {
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("self pid=%d ppid=%d uid=%u gid=%u groups=", (int)getpid(), (int)getppid(),
           (unsigned)getuid(), (unsigned)getgid());
    for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", (unsigned)groups[i]);
    const char *home = getenv("HOME");
    printf(" home=%s\n", home ? home : "");
}

static void ps(void) {
    DIR *d = opendir("/proc");
    if (!d) die("/proc");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(line, sizeof line, f)) {
            /* pid (comm) state ppid ... ; comm may hold spaces: take the last ')' */
            char *open = strchr(line, '('), *close = strrchr(line, ')');
            if (open && close) {
                *close = 0;
                int ppid = 0;
                char state;
                sscanf(close + 2, "%c %d", &state, &ppid);
                printf("proc pid=%s ppid=%d comm=%s\n", e->d_name, ppid, open + 1);
            }
        }
        fclose(f);
    }
    closedir(d);
}

static const struct {
    int sig;
    const char *name;
} sigs[] = {
    {SIGTERM, "TERM"}, {SIGINT, "INT"},   {SIGHUP, "HUP"},     {SIGQUIT, "QUIT"},
    {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"}, {SIGWINCH, "WINCH"},
};

static void wait_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i].sig);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) die("sigprocmask");
    printf("ready\n");
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            die("sigwaitinfo");
        }
        const char *name = "?";
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            if (sigs[i].sig == sig) name = sigs[i].name;
        printf("signal %s from=%d\n", name, (int)info.si_pid);
        if (sig == SIGTERM) {
            printf("exiting 42\n");
            exit(42);
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i];
        if (strcmp(op, "file") == 0 && i + 1 < argc) {
            show_file(argv[++i]);
        } else if (strcmp(op, "lookup") == 0 && i + 2 < argc) {
            lookup(argv[i + 1], argv[i + 2]);
            i += 2;
        } else if (strcmp(op, "self") == 0) {
            self();
        } else if (strcmp(op, "ps") == 0) {
            ps();
        } else if (strcmp(op, "wait") == 0) {
            wait_signals();
        } else if (strcmp(op, "sleep") == 0 && i + 1 < argc) {
            long ms = atol(argv[++i]);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        } else if (strcmp(op, "exec") == 0 && i + 1 < argc) {
            execvp(argv[i + 1], &argv[i + 1]);
            die(argv[i + 1]);
        } else {
            fprintf(stderr, "probe: unknown step or missing argument: %s\n", op);
            return 64;
        }
    }
    return 0;
}
