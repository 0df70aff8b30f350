package dev.jvbus.core.testing;

import dev.jvbus.core.doorbell.Notifier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A doorbell whose peer never reads: a real kernel pipe, filled to the brim, written in blocking
 * mode, so {@link #signal()} blocks in the kernel until the test lets the peer read
 * ({@link #release()}). It stands for any call on the data path that does not return, whatever makes
 * it so: today a peer that clears O_NONBLOCK on its call eventfd and saturates the counter; once the
 * bus's eventfds never block, whatever is left. The switch, the models and the control plane must not
 * depend on every such call returning, so the tests wedge a receiver with this rather than with a
 * particular fd trick that a fix elsewhere would take away.
 */
public final class StuckDoorbell implements Notifier, AutoCloseable {
    private final Pipe pipe;
    private final AtomicInteger inside = new AtomicInteger();
    private volatile boolean released;

    public StuckDoorbell() {
        try {
            pipe = Pipe.open();
            pipe.sink().configureBlocking(false);
            ByteBuffer chunk = ByteBuffer.allocate(65536);
            while (true) {
                chunk.clear();
                if (pipe.sink().write(chunk) == 0) break;      // the pipe is full: the peer never read
            }
            pipe.sink().configureBlocking(true);
            pipe.source().configureBlocking(false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Blocks in write(2) on the full pipe until {@link #release()}; returns at once after it. */
    @Override
    public void signal() {
        if (released) return;
        inside.incrementAndGet();
        try {
            pipe.sink().write(ByteBuffer.allocate(1));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            inside.decrementAndGet();
        }
    }

    /** Waits until a thread is stuck in {@link #signal()}; false if none got there within {@code timeout}. */
    public boolean awaitStuck(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (inside.get() == 0) {
            if (System.nanoTime() > deadline) return false;
            LockSupport.parkNanos(1_000_000);
        }
        return true;
    }

    /** True while a thread is inside {@link #signal()}. */
    public boolean stuck() {
        return inside.get() > 0;
    }

    /** The peer reads at last: a stuck signal returns, later ones do not block. */
    public void release() {
        released = true;
        try {
            ByteBuffer sink = ByteBuffer.allocate(65536);
            while (pipe.source().read(sink.clear()) > 0) { }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        release();
        try {
            pipe.sink().close();
            pipe.source().close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
