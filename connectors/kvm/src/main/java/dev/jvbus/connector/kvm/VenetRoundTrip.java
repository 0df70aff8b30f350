package dev.jvbus.connector.kvm;

import java.util.List;

/**
 * What the bundled guest driver's venet mode ({@link GuestProgram.Mode#VENET}) is asked to do, and how
 * to read what it reports. The guest opens venet device {@code devid}, places rx, tx and event IOQ rings
 * in its own memory (DEVSHM), acks VENET_CAP_EVQ_LINKSTATE (and VENET_CAP_SG if {@code sg}), brings the
 * link up and waits for the LINKSTATE event, then sends {@code frames} frames of {@code length} bytes to
 * {@code peerMac} with at most {@code window} in flight, and checks that each comes back, in order, from
 * the peer to its own MAC with the same bytes (guest/vbus-guest.c, {@code venet()}).
 *
 * <p>A frame: dst, src, ethertype 0x88B5, the sequence number (u64 big-endian), then byte {@code i}
 * is {@code (byte) (seq * 31 + i)}: {@link #frameByte}.
 *
 * @param patienceTicks TSC ticks the guest waits without any progress before it reports a stall
 * @param waitMicros    0: the guest spins while it has nothing to do; else it sleeps in WAIT hypercalls of
 *                      at most this long, woken by the device's signal (HYPERCALLS.md, "Signals to the guest")
 */
public record VenetRoundTrip(long devid, long peerMac, int frames, int length, int window, boolean sg, long patienceTicks,
                             long waitMicros) {
    public static final int ETHERTYPE = 0x88B5;
    /** Rings of 64 descriptors with one kept free: the guest never has more than 63 rx buffers out. */
    public static final int MAX_WINDOW = 63;

    public VenetRoundTrip {
        RoundTripStage.checkShape(frames, length, window, MAX_WINDOW, patienceTicks, waitMicros);
    }

    /** struct venet_params, in order. */
    long[] words() {
        return new long[] {devid, peerMac, frames, length, window, sg ? 1 : 0, patienceTicks, waitMicros};
    }

    /** Writes the parameters into {@code vm} and runs it. */
    public RunReport run(MicroVm vm, java.time.Duration timeout) {
        vm.writeParameters(words());
        return vm.run(GuestProgram.Mode.VENET, GuestLayout.PARAMS, timeout);
    }

    /** Byte {@code i} (from 22) of frame {@code seq}. */
    public static byte frameByte(long seq, int i) {
        return (byte) (seq * 31 + i);
    }

    /**
     * What a successful run reports (EXIT code 0). {@code txKicks}: shm-signal injects on tx; {@code txDoorbells}:
     * those that rang the doorbell port (the worker slept); {@code waits}: WAIT hypercalls; {@code wakes}: those
     * a device's signal ended rather than the time.
     */
    public record Report(long version, int grantedSg, int grantedEvents, long mac, long linkState, long sent, long received,
                         long txCompletions, long txKicks, long txDoorbells, long waits, long wakes) {
        static final int WORDS = 12;

        public static Report of(List<Long> w) {
            if (w.size() != WORDS) throw new IllegalArgumentException("a venet report has " + WORDS + " words, not " + w.size() + ": " + w);
            return new Report(w.get(0), w.get(1).intValue(), w.get(2).intValue(), w.get(3), w.get(4), w.get(5), w.get(6), w.get(7),
                    w.get(8), w.get(9), w.get(10), w.get(11));
        }
    }
}
