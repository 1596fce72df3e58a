/* PID 1 of every sandbox: holds the tool agent's socket, starts the agent on demand, reaps orphans.
 *
 * A small static program (built once per machine by sandbox/init_binary.py), so an idle session is
 * one process of a few hundred kilobytes. init listens on the agent's socket itself and starts the
 * agent (server.py) when the first connection waits there, handing it the listening socket; an agent
 * that dies, or leaves after being idle, is started again by the next connection, at most once a
 * second. Pending connections wait in the socket's backlog meanwhile, so none is refused.
 *
 * Checkpoints (gvisor sessions, docs/runtimes.md). The agent's socket is a socket of the host, which
 * gVisor cannot write into a checkpoint, so before one the host sends init SIGUSR1: init closes its
 * listening socket and has the agent let go of every host socket it holds (over a socket pair of
 * their own, CONTROL_FD in the agent), then removes the socket file, which tells the host it may go
 * on. After the restore (or a checkpoint that failed), SIGUSR2: init listens again and hands the new
 * socket to the agent, which keeps every process, kernel and state it had.
 *
 * Commands. The shell tool's commands, the agent's most frequent start, go through `init --launch`
 * (launch below), spawned without a copy of the agent's address space: under gVisor, a fork of the
 * agent's interpreter alone takes about 30 ms. Longer-lived processes (background processes,
 * kernels, the browser) are started by subprocess in the agent.
 *
 * Code in the session may remove or replace the socket (the run folder is the session user's), and
 * the host would then reach no agent: init checks every CHECK_INTERVAL_MS that its socket is still in
 * place, listens anew if not, and ends the agent serving the lost socket.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_PATH "/.cove/run/agent.sock"
#define LISTEN_FD 3         /* where the agent finds the listening socket (server.py) */
#define CONTROL_FD 4        /* the agent's end of its socket pair with init */
#define BACKLOG 128
#define RESTART_INTERVAL_MS 1000 /* an agent that keeps dying is started at most this often */
#define CHECK_INTERVAL_MS 2000   /* how often the socket is checked to be in place */
#define RELEASE_WAIT_S 10        /* how long init waits for the agent to let go of its sockets */

static char *const agent_command[] = {
    "python3", "-I", "-S", "-c",
    "import sys; sys.path.insert(0, '/.cove'); from agent.server import serve; serve()", NULL,
};

static void say(const char *message) {
    fprintf(stdout, "cove-init: %s\n", message);
    fflush(stdout);
}

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A listening socket at SOCKET_PATH (or -1), and the inode it is bound at in *inode. */
static int listen_at_path(ino_t *inode) {
    if (unlink(SOCKET_PATH) != 0 && (errno == EISDIR || errno == EPERM)) {
        /* a folder planted there by code in the session: moved aside */
        char aside[sizeof(SOCKET_PATH) + 24];
        snprintf(aside, sizeof(aside), "%s.%lld", SOCKET_PATH, now_ms());
        rename(SOCKET_PATH, aside);
    }
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, SOCKET_PATH, sizeof(address.sun_path) - 1);
    struct stat bound;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 ||
        chmod(SOCKET_PATH, 0600) != 0 /* only the session user; the umask stays for the rest */ ||
        listen(listener, BACKLOG) != 0 || lstat(SOCKET_PATH, &bound) != 0) {
        perror("cove-init: cannot listen on " SOCKET_PATH);
        if (listener >= 0)
            close(listener);
        return -1;
    }
    *inode = bound.st_ino;
    return listener;
}

/* Whether the socket init listens on is still the one at SOCKET_PATH. */
static int in_place(ino_t inode) {
    struct stat found;
    return lstat(SOCKET_PATH, &found) == 0 && S_ISSOCK(found.st_mode) && found.st_ino == inode;
}

/* Start the agent on `listener`: answers its pid (or -1), and init's end of their pair in *control. */
static pid_t start_agent(int listener, int *control) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* above both targets first, so neither dup2 below overwrites the other's source */
        int listening = fcntl(listener, F_DUPFD_CLOEXEC, 10);
        int theirs = fcntl(pair[1], F_DUPFD_CLOEXEC, 10);
        if (listening >= 0 && theirs >= 0 && dup2(listening, LISTEN_FD) == LISTEN_FD &&
            dup2(theirs, CONTROL_FD) == CONTROL_FD)
            execvp(agent_command[0], agent_command);
        perror("cove-init: cannot start the agent");
        _exit(127);
    }
    close(pair[1]);
    if (pid < 0) {
        close(pair[0]);
        return -1;
    }
    *control = pair[0];
    return pid;
}

/* Have the agent let go of its host sockets, and wait (boundedly) until it has. */
static void release_agent(int control) {
    if (control < 0)
        return;
    struct timeval wait = {.tv_sec = RELEASE_WAIT_S};
    setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    setsockopt(control, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
    char answer;
    if (send(control, "S", 1, MSG_NOSIGNAL) != 1 || recv(control, &answer, 1, 0) != 1)
        say("the agent did not confirm it let go of its sockets");
}

/* Give the agent init's new listening socket, after a checkpoint. */
static void hand_over(int control, int listener) {
    if (control < 0 || listener < 0)
        return;
    char tag = 'L';
    struct iovec data = {.iov_base = &tag, .iov_len = 1};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } rights = {0};
    struct msghdr message = {
        .msg_iov = &data, .msg_iovlen = 1, .msg_control = rights.buffer, .msg_controllen = sizeof(rights.buffer)};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &listener, sizeof(int));
    sendmsg(control, &message, MSG_NOSIGNAL);
}

/* Close every descriptor from `lowest` on but `kept`: by close_range, else as /proc lists them. */
static void close_others(int lowest, int kept) {
    if ((kept == lowest || syscall(SYS_close_range, lowest, kept - 1, 0) == 0) &&
        syscall(SYS_close_range, kept + 1, ~0U, 0) == 0)
        return;
    DIR *listed = opendir("/proc/self/fd");
    if (listed == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(listed)) != NULL) {
        int fd = atoi(entry->d_name);
        if (fd >= lowest && fd != kept && fd != dirfd(listed) && entry->d_name[0] != '.')
            close(fd);
    }
    closedir(listed);
}

/* `init --launch ERRORS PROCS NPROC CWD PROGRAM [ARG...]`: a command of the agent's
 * (agent/process_trees.py), spawned in a new session with its standard streams and the default
 * SIGPIPE and SIGXFSZ. It joins its tree's cgroup by writing to descriptor PROCS (-1: none), takes
 * the process limit NPROC (0: none), moves to CWD, closes every other descriptor but ERRORS and
 * runs PROGRAM. A step that fails is written to descriptor ERRORS as "STAGE ERRNO"; a PROGRAM that
 * runs closes it unwritten. */
static int launch(char **argv) {
    int errors = atoi(argv[0]), procs = atoi(argv[1]);
    long limit = atol(argv[2]);
    const char *stage = "enter";
    if (procs >= 0 && (write(procs, "0", 1) != 1 || close(procs) != 0))
        goto failed;
    struct rlimit processes = {.rlim_cur = limit, .rlim_max = limit};
    if (limit > 0 && setrlimit(RLIMIT_NPROC, &processes) != 0)
        goto failed;
    stage = "chdir";
    if (chdir(argv[3]) != 0)
        goto failed;
    stage = "exec";
    close_others(3, errors);
    fcntl(errors, F_SETFD, FD_CLOEXEC);
    execv(argv[4], argv + 4);
failed:
    dprintf(errors, "%s %d", stage, errno);
    return 255;
}

/* Collect every exited child; answers whether `agent` was among them. */
static int reap_children(pid_t agent) {
    int agent_exited = 0;
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        agent_exited |= pid == agent;
    return agent_exited;
}

int main(int argc, char **argv) {
    if (argc >= 7 && strcmp(argv[1], "--launch") == 0)
        return launch(argv + 2);
    /* `init --hostname NAME`, run by the host with CAP_SYS_ADMIN in a sandbox restored from another's
     * checkpoint, whose UTS namespace came with that image: gives the sandbox its own name. */
    if (argc == 3 && strcmp(argv[1], "--hostname") == 0) {
        if (sethostname(argv[2], strlen(argv[2])) == 0)
            return 0;
        perror("sethostname");
        return 1;
    }
    sigset_t handled;
    sigemptyset(&handled);
    int numbers[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        sigaddset(&handled, numbers[i]);
    sigprocmask(SIG_BLOCK, &handled, NULL);
    int signals = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
    ino_t bound = 0;
    int listener = listen_at_path(&bound);
    if (signals < 0 || listener < 0)
        return 1;
    pid_t agent = 0;
    int control = -1;
    int suspended = 0;
    long long may_start_at = 0;
    say("ready");
    for (;;) {
        long long delay = may_start_at - now_ms();
        int watch_listener = agent == 0 && !suspended && delay <= 0;
        struct pollfd watched[2] = {{.fd = signals, .events = POLLIN}, {.fd = listener, .events = POLLIN}};
        int ready = poll(watched, watch_listener ? 2 : 1, delay > 0 ? (int)delay : CHECK_INTERVAL_MS);
        if (ready < 0 && errno != EINTR)
            return 1;
        if (ready > 0 && watched[0].revents & POLLIN) {
            int suspend = 0, resume = 0;
            struct signalfd_siginfo received;
            while (read(signals, &received, sizeof(received)) == sizeof(received)) {
                if (received.ssi_signo == SIGTERM || received.ssi_signo == SIGINT)
                    return 0;
                suspend |= received.ssi_signo == SIGUSR1;
                resume |= received.ssi_signo == SIGUSR2;
            }
            if (reap_children(agent)) {
                agent = 0;
                if (control >= 0)
                    close(control);
                control = -1;
            }
            if (suspend && !suspended) {
                suspended = 1;
                close(listener);
                listener = -1;
                release_agent(control);
                unlink(SOCKET_PATH);
                say("let go of the host's sockets for a checkpoint");
            }
            if (resume && suspended) {
                suspended = 0;
                listener = listen_at_path(&bound);
                hand_over(control, listener);
                say("listening again");
            }
        }
        if (suspended)
            continue;
        if (agent == 0 && watch_listener && watched[1].revents & POLLIN) {
            agent = start_agent(listener, &control);
            if (agent < 0)
                agent = 0;
            may_start_at = now_ms() + RESTART_INTERVAL_MS;
        }
        if (listener < 0 || !in_place(bound)) {
            if (listener >= 0)
                close(listener);
            listener = listen_at_path(&bound);
            if (agent > 0)
                kill(agent, SIGKILL);
            if (listener < 0)
                sleep(1); /* the run folder is unusable: try again, without spinning */
        }
    }
}
