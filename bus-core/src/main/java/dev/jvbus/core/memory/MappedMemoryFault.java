package dev.jvbus.core.memory;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * What the JVM throws when a mapped page of a peer's file is gone: a front-end truncated its guest-memory
 * file under the mapping (vhost-user front-ends' files are not sealed), the next access raises SIGBUS, and
 * HotSpot turns it into an {@link InternalError} ("a fault occurred in an unsafe memory access operation")
 * on the accessing thread. It is that memory's owner's fault, so whoever touched the memory on the owner's
 * behalf (another device's worker delivering a frame into it) reports it against the owner and goes on.
 *
 * <p><b>Where the error is thrown.</b> Not at the access. In compiled code HotSpot skips the faulting
 * instruction, marks the thread, and throws the error at the thread's next safepoint poll: a loop's back
 * edge, or the return of a method compiled on its own. With the access inlined deep into a sender's batch
 * loop, that poll is past any catch around the access (an experiment: 0 of 32,000 faults caught inside
 * the try, every one thrown at the caller's loop). So a party that touches memory which can shrink
 * ({@link GuestMemory#canShrink()}) on someone else's behalf calls {@link #surface()} at the end of its
 * try: a pending fault is thrown there, inside the catch that can tell whose it is. And because a fault
 * may still surface later than its access (another party's, carried into this try), the catch blames the
 * memory only on evidence ({@link #in}): its file is now shorter than our mapping.
 */
public final class MappedMemoryFault {
    private MappedMemoryFault() {}

    /**
     * A call C2 cannot inline: the handle is not a constant (a static field that is not final), so the call
     * stays a call and the compiled target's return polls. {@code static final} would let it inline and
     * poll nowhere. About 4 ns; a native downcall (whose return to Java polls as well) measured 10.
     */
    @SuppressWarnings("FieldMayBeFinal")
    private static MethodHandle poll;

    static {
        try {
            poll = MethodHandles.lookup().findStatic(MappedMemoryFault.class, "returns", MethodType.methodType(void.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static void returns() {}

    /**
     * Throws here a fault that an access of this thread raised since its last safepoint poll (see the class
     * comment); does nothing otherwise. Call it at the end of a try around accesses to memory that
     * {@linkplain GuestMemory#canShrink() can shrink}, inside the try. No allocation, no syscall.
     */
    public static void surface() {
        try {
            poll.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** True if {@code e} is the JVM's report of a faulting memory access, not some other internal error. */
    public static boolean is(Throwable e) {
        return e instanceof InternalError && e.getMessage() != null && e.getMessage().contains("memory access");
    }

    /**
     * True if {@code e} is a memory fault and {@code memory} has the evidence that it was its: a file behind it
     * is now shorter than our mapping ({@link GuestMemory#shrunk()}). A fault without that evidence is not
     * {@code memory}'s owner's to answer for: the caller rethrows it to the thread's own worker.
     */
    public static boolean in(Throwable e, GuestMemory memory) {
        return is(e) && memory.shrunk();
    }

    /** The words a device's NEEDS_RESET reason uses for it. */
    public static String describe(Throwable e) {
        return "its memory faulted (" + e.getMessage() + "): its memory file was truncated under our mapping";
    }
}
