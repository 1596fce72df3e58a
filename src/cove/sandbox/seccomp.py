"""The seccomp profile every sandbox runs under: an allow-list of system calls, everything else EPERM.

A session has no capabilities, yet the kernel still offers it a large surface that needs none:
nested user namespaces (inside which mount, raw sockets and nf_tables open up), keyrings, BPF,
perf events, userfaultfd and io_uring. The allow-list is what language runtimes (Python, Node,
Java), shells, package tools, Chromium (run with its own sandbox off, see docs/security.md) and a
desktop need; new system calls stay closed until added here on purpose. runc applies the profile to
the sandbox's init and to every `runc exec`, after no_new_privs and before the first instruction of
untrusted code.
"""

from __future__ import annotations

import platform
from typing import Any

from cove.sandbox.session_volumes import VOLUME_IOCTLS, VOLUME_IOCTLS_MASK

EPERM = 1
ENOSYS = 38

NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: new namespaces of any kind."""
CLONE_NEWTIME = 0x80
"""unshare's flag for a time namespace (in clone's own flags these bits are the exit signal)."""

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
NETLINK_ROUTE, NETLINK_SOCK_DIAG, NETLINK_KOBJECT_UEVENT = 0, 4, 15
"""Netlink families that read state (addresses, sockets, device events); nf_tables and audit stay shut."""

PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)
"""PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE (used by debuggers) and the query value."""

_ALLOWED_NAMES = """
    accept accept4 access alarm arch_prctl bind brk cachestat capget capset chdir chmod chown
    clock_getres clock_gettime clock_nanosleep close close_range connect copy_file_range creat dup
    dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd
    eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fchdir fchmod
    fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr
    fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv futex_wake
    futimesat get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents getdents64
    getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid
    getpriority getrandom getresgid getresuid getrlimit getrusage getsid getsockname getsockopt
    gettid gettimeofday getuid getxattr getxattrat inotify_add_watch inotify_init inotify_init1
    inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_setup io_submit
    ioprio_get ioprio_set kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
    lchown lgetxattr link linkat listen listxattr listxattrat llistxattr lremovexattr lseek
    lsetxattr lstat madvise map_shadow_stack mbind membarrier memfd_create mincore mkdir mkdirat
    mknod mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedsend mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap nanosleep newfstatat open openat openat2 pause pidfd_getfd pidfd_open
    pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64
    preadv preadv2 prlimit64 process_madvise process_vm_readv process_vm_writev pselect6 ptrace
    pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg recvmsg
    remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall rmdir
    rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min
    sched_getaffinity sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
    semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto set_mempolicy
    set_mempolicy_home_node set_robust_list set_thread_area set_tid_address setfsgid setfsuid
    setgid setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit
    setsid setsockopt setuid setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack
    signalfd signalfd4 socketpair splice stat statfs statx symlink symlinkat sync sync_file_range
    syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
    timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask uname
    unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid write writev
"""
ALLOWED = _ALLOWED_NAMES.split()
"""Plain system calls any process may make. Not here, so refused: the mount family (mount, umount2,
fsopen, open_tree, move_mount, mount_setattr, pivot_root), setns, keyctl, add_key, request_key, bpf,
perf_event_open, userfaultfd, io_uring_*, kexec_*, open_by_handle_at, init/finit/delete_module,
fanotify, quotactl, swapon, reboot, syslog, acct, clock and time setters, iopl, ioperm, modify_ldt,
and everything the kernel adds later."""

ARCHITECTURES = {"x86_64": ["SCMP_ARCH_X86_64"], "aarch64": ["SCMP_ARCH_AARCH64"]}
"""Only the native ABI: 32-bit entry points on a 64-bit kernel are refused as a whole."""


def _rule(names: list[str], action: str = "SCMP_ACT_ALLOW", **extra: Any) -> dict[str, Any]:
    return {"names": names, "action": action, **extra}


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _conditional_rules() -> list[dict[str, Any]]:
    """System calls allowed only with some arguments (rules for one call are ORed, args ANDed)."""
    no_new_namespace = _arg(0, NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", 0)
    no_new_namespace_unshare = _arg(0, NAMESPACE_FLAGS | CLONE_NEWTIME, "SCMP_CMP_MASKED_EQ", 0)
    rules = [
        _rule(["clone"], args=[no_new_namespace]),
        _rule(["unshare"], args=[no_new_namespace_unshare]),
        # clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes the C library
        # fall back to clone, whose flags it can check.
        _rule(["clone3"], "SCMP_ACT_ERRNO", errnoRet=ENOSYS),
    ]
    for family in (AF_UNIX, AF_INET, AF_INET6):
        rules.append(_rule(["socket"], args=[_arg(0, family, "SCMP_CMP_EQ")]))
    for protocol in (NETLINK_ROUTE, NETLINK_SOCK_DIAG, NETLINK_KOBJECT_UEVENT):
        netlink = [_arg(0, AF_NETLINK, "SCMP_CMP_EQ"), _arg(2, protocol, "SCMP_CMP_EQ")]
        rules.append(_rule(["socket"], args=netlink))
    for persona in PERSONALITIES:
        rules.append(_rule(["personality"], args=[_arg(0, persona, "SCMP_CMP_EQ")]))
    # ioctl but for btrfs's volume commands: allowed when one bit of the request under their mask
    # differs from theirs. The kernel reads the request's low 32 bits only, and so do these rules.
    for bit in range(32):
        flag = 1 << bit
        if VOLUME_IOCTLS_MASK & flag:
            rules.append(_rule(["ioctl"], args=[_arg(1, flag, "SCMP_CMP_MASKED_EQ", ~VOLUME_IOCTLS & flag)]))
    return rules


def default_profile(machine: str | None = None) -> dict[str, Any]:
    """The OCI `linux.seccomp` object for this host's architecture."""
    machine = machine or platform.machine()
    if machine not in ARCHITECTURES:
        raise RuntimeError(
            f"Cove's seccomp profile has no rules for {machine!r} hosts (x86_64 and aarch64 only)"
        )
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ARCHITECTURES[machine],
        "syscalls": [_rule(sorted(ALLOWED)), *_conditional_rules()],
    }
