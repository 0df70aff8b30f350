package dev.jvbus.connector.vhostuser.protocol;

import java.util.List;

/**
 * A decoded front-end message: the request, its flags and a typed payload. The fds that came with
 * it are the transport's business (they are counted against the request's rule when decoding).
 */
public record Message(Request request, int flags, Body body) {

    public boolean needReply() {
        return (flags & Wire.FLAG_NEED_REPLY) != 0;
    }

    /** Typed payloads. */
    public sealed interface Body { }

    public record None() implements Body { }

    public record U64(long value) implements Body { }

    /** struct vhost_vring_state: index u32, num u32. */
    public record VringState(int index, int num) implements Body { }

    /** struct vhost_vring_addr: index, flags, size (unused), desc, used, avail, log — all user addresses but log. */
    public record VringAddr(int index, int flags, long desc, long used, long avail, long log) implements Body { }

    /** One memory region: guest physical address, size, front-end user address, offset into the fd. */
    public record Region(long guestAddress, long size, long userAddress, long mmapOffset) implements Body { }

    public record MemTable(List<Region> regions) implements Body {
        public MemTable { regions = List.copyOf(regions); }
    }

    /** SET_LOG_BASE with LOG_SHMFD: size and offset of the dirty log in the fd. */
    public record Log(long size, long offset) implements Body { }

    /** VhostUserInflight: the inflight buffer's size and offset in its fd, for num_queues queues of queue_size entries (u16s). */
    public record Inflight(long mmapSize, long mmapOffset, int numQueues, int queueSize) implements Body { }

    /** Config space access: offset, size, flags, and (SET_CONFIG) the bytes. */
    public record Config(int offset, int size, int flags, byte[] data) implements Body {
        public Config { data = data.clone(); }
        @Override public byte[] data() { return data.clone(); }
    }
}
