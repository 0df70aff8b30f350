package dev.jvbus.connector.kvm;

import dev.jvbus.core.bus.Device;
import dev.jvbus.model.venet.VenetGuest;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The far end: a venet device on the guest's switch, driven by venet's test-side driver on a thread of
 * its own, that sends every frame it receives back to its sender from its own MAC (the switch holds a
 * port to its MAC). Optionally flips one byte of one echo, to play a corrupting network.
 */
final class EchoPeer implements AutoCloseable {
    static final byte FLIP = 0x5A;
    private final VenetGuest driver;
    private final List<byte[]> seen = Collections.synchronizedList(new ArrayList<>());
    private final Thread thread;
    private volatile boolean stop;
    private volatile Throwable failure;
    private boolean closed;

    EchoPeer(Device device, long corruptSeq, int corruptOffset) throws Exception {
        driver = new VenetGuest(VenetGuest.Options.flat()).bringUp(device);
        byte[] mine = MacAddress.toBytes(driver.mac());
        thread = Thread.ofPlatform().daemon().name("venet-echo-peer").start(() -> {
            int echoed = 0;
            try {
                while (!stop) {
                    int n = driver.poll();
                    while (echoed < driver.received.size()) {
                        byte[] f = driver.received.get(echoed++);
                        seen.add(f.clone());
                        byte[] echo = f.clone();
                        System.arraycopy(f, 6, echo, 0, 6);
                        System.arraycopy(mine, 0, echo, 6, 6);
                        if (f.length >= 22 && ByteBuffer.wrap(f).getLong(14) == corruptSeq) echo[corruptOffset] ^= FLIP;
                        driver.sendBlocking(echo);
                    }
                    if (n == 0) LockSupport.parkNanos(20_000);
                }
            } catch (Throwable t) {
                failure = t;
            }
        });
    }

    List<byte[]> seen() {
        synchronized (seen) {
            return List.copyOf(seen);
        }
    }

    void stopAndCheck() {
        close();
        if (failure != null) throw new AssertionError("the echo peer failed", failure);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        stop = true;
        try {
            thread.join(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive()) driver.close();   // else it is stuck in the ring; leave its memory mapped
    }

    /**
     * Stops the peer and checks it saw exactly {@code frames} frames of {@code length} bytes from {@code from} to
     * {@code to}, in order, each with its sequence number and pattern ({@link VenetRoundTrip#frameByte}).
     */
    void assertSawInOrder(int frames, int length, long from, long to) {
        stopAndCheck();
        List<byte[]> seen = seen();
        assertThat(seen).hasSize(frames);
        for (int seq = 0; seq < frames; seq++) {
            byte[] f = seen.get(seq);
            assertThat(f).as("frame " + seq + " length").hasSize(length);
            ByteBuffer b = ByteBuffer.wrap(f);
            assertThat(MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 0, 6))).as("dst of " + seq).isEqualTo(to);
            assertThat(MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 6, 12))).as("src of " + seq).isEqualTo(from);
            assertThat(b.getShort(12) & 0xffff).isEqualTo(VenetRoundTrip.ETHERTYPE);
            assertThat(b.getLong(14)).as("sequence: in order").isEqualTo(seq);
            for (int i = 22; i < length; i++)
                if (f[i] != VenetRoundTrip.frameByte(seq, i)) throw new AssertionError("frame " + seq + " byte " + i + " is " + f[i]);
        }
    }
}
