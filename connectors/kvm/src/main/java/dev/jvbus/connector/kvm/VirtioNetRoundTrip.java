package dev.jvbus.connector.kvm;

import java.util.List;

/**
 * What the bundled guest driver's virtio-net mode ({@link GuestProgram.Mode#VIRTIO_NET}) is asked to do,
 * and how to read its report. The guest opens virtio-net device {@code devid}, negotiates VERSION_1 and MAC
 * (and EVENT_IDX if {@code eventIdx}), reads its MAC from config space, lays out rx and tx split rings of 64
 * in its own memory (DEVSHM), posts 64 rx buffers, and sends {@code frames} frames of {@code length} bytes
 * (after a plain 12-byte virtio_net_hdr) to {@code peerMac} with at most {@code window} in flight, checking
 * every echo byte for byte (guest/vbus-guest.c, {@code virtio_net()}). The frames are those of
 * {@link VenetRoundTrip}, so one echoing peer serves both.
 *
 * @param patienceTicks TSC ticks without any progress before the guest reports a stall
 * @param waitMicros    0: the guest spins while idle; else it sleeps in WAIT of at most this long, its
 *                      signals armed through the ring's own suppression (flags, or used_event with EVENT_IDX)
 */
public record VirtioNetRoundTrip(long devid, long peerMac, int frames, int length, int window, boolean eventIdx,
                                 long patienceTicks, long waitMicros) {
    /** Rx rings of 64 with every buffer posted: the echoes of a window never outrun them. */
    public static final int MAX_WINDOW = 64;

    public VirtioNetRoundTrip {
        RoundTripStage.checkShape(frames, length, window, MAX_WINDOW, patienceTicks, waitMicros);
    }

    /** struct vnet_params, in order. */
    long[] words() {
        return new long[] {devid, peerMac, frames, length, window, eventIdx ? 1 : 0, patienceTicks, waitMicros};
    }

    /** Writes the parameters into {@code vm} and runs it. */
    public RunReport run(MicroVm vm, java.time.Duration timeout) {
        vm.writeParameters(words());
        return vm.run(GuestProgram.Mode.VIRTIO_NET, GuestLayout.PARAMS, timeout);
    }

    /**
     * What a successful run reports (EXIT code 0). {@code features}: what the guest acknowledged;
     * {@code txKicks}/{@code rxKicks}: avail publishes; {@code txDoorbells}/{@code rxDoorbells}: those the
     * device's suppression let ring the doorbell port; {@code waits}/{@code wakes} as in {@link VenetRoundTrip}.
     */
    public record Report(long version, long features, long mac, long sent, long received, long txCompletions,
                         long txKicks, long txDoorbells, long rxDoorbells, long waits, long wakes) {
        static final int WORDS = 11;

        public static Report of(List<Long> w) {
            if (w.size() != WORDS) throw new IllegalArgumentException("a virtio-net report has " + WORDS + " words, not " + w.size() + ": " + w);
            return new Report(w.get(0), w.get(1), w.get(2), w.get(3), w.get(4), w.get(5), w.get(6), w.get(7), w.get(8), w.get(9), w.get(10));
        }
    }
}
