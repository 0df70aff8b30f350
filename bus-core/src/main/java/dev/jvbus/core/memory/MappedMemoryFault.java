package dev.jvbus.core.memory;

/**
 * What the JVM throws when a mapped page of a peer's file is gone: a front-end truncated its guest-memory
 * file under the mapping (vhost-user front-ends' files are not sealed), the next access raises SIGBUS, and
 * HotSpot turns it into an {@link InternalError} ("a fault occurred in an unsafe memory access operation")
 * on the accessing thread. It is that memory's owner's fault, so whoever touched the memory on the owner's
 * behalf (another device's worker delivering a frame into it) reports it against the owner and goes on.
 */
public final class MappedMemoryFault {
    private MappedMemoryFault() {}

    /** True if {@code e} is the JVM's report of a faulting memory access, not some other internal error. */
    public static boolean is(Throwable e) {
        return e instanceof InternalError && e.getMessage() != null && e.getMessage().contains("memory access");
    }

    /** The words a device's NEEDS_RESET reason uses for it. */
    public static String describe(Throwable e) {
        return "its memory faulted (" + e.getMessage() + "); was the front-end's memory file truncated?";
    }
}
