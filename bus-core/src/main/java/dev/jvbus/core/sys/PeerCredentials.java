package dev.jvbus.core.sys;

/**
 * Who is at the other end of an AF_UNIX socket ({@code SO_PEERCRED}): the kernel records the
 * peer's pid, uid and gid when it connects (or creates the pair), so the peer cannot lie about them.
 */
public record PeerCredentials(int pid, int uid, int gid) {
    /** This process's own credentials, to compare with a peer's. */
    public static PeerCredentials ofThisProcess() {
        return new PeerCredentials(LibC.getpid(), LibC.getuid(), LibC.getgid());
    }
}
