package dev.jvbus.bench;

import java.io.IOException;
import java.util.List;

/**
 * SLOT: jvbus SplitVirtqueue (dev.jvbus.core.ring.virtio), to be plugged in once that branch is merged.
 *
 * <p>How to fill it in:
 * <ul>
 *   <li>{@link #setup}: in the parent, create the ring memory with {@code Memfd.create} (ring layout
 *       plus a buffer area of ring-size x message-size) and two {@code EventFd}s (kick, call); keep them
 *       open in the returned Setup until it is closed. childArgs = parent pid, memfd fd, memfd size,
 *       kick fd, call fd (and queue size).</li>
 *   <li>attach: {@code Memfd.mapPeer(pid, fd, size, Arena.ofShared())} and {@code EventFd.fromPeer(pid, fd)}
 *       (pidfd_getfd) in each child. Producer = driver side: copy the stamped message into its buffer,
 *       add the buffer, kick if not suppressed, recycle used buffers. Consumer = device side: pop the
 *       chain, copy the bytes out into a private buffer, hand the two stamps to the sink, push used.</li>
 *   <li>Modes: SPIN = never sleep; ADAPTIVE = the ring's default waiter (bounded spin, then epoll/eventfd
 *       with notifications re-enabled). {@link Producer#flush()} must kick, so a sleeping consumer sees the
 *       tail of a run.</li>
 *   <li>Then set {@link #available()} to true. The harness prints split/pipe and split/agrona ratios by itself.</li>
 * </ul>
 */
public final class SplitRingTransport implements Transport {
    @Override public String name() { return "split"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.SPIN, WaitMode.ADAPTIVE); }
    @Override public boolean baseline() { return false; }
    @Override public boolean available() { return false; }

    @Override
    public Setup setup(Case c) throws IOException {
        throw new UnsupportedOperationException("split ring not plugged in yet");
    }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        throw new UnsupportedOperationException("split ring not plugged in yet");
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        throw new UnsupportedOperationException("split ring not plugged in yet");
    }
}
