package dev.jvbus.connector.kvm;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** A flat x86-64 binary the VMM loads at {@link GuestLayout#PROGRAM} and enters at its first byte. */
public record GuestProgram(String name, byte[] bytes) {
    /** The resource holding the bundled vbus guest driver (built from guest/vbus-guest.c by guest/build.sh). */
    public static final String VBUS_GUEST_RESOURCE = "vbus-guest.bin";

    public GuestProgram {
        if (bytes.length == 0) throw new IllegalArgumentException("guest program '" + name + "' is empty");
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() { return bytes.clone(); }

    public int size() { return bytes.length; }

    /** The vbus guest driver bundled with this connector. */
    public static GuestProgram vbusGuest() {
        try (InputStream in = GuestProgram.class.getResourceAsStream(VBUS_GUEST_RESOURCE)) {
            if (in == null) throw new IllegalStateException("resource " + VBUS_GUEST_RESOURCE + " is missing from connector-kvm");
            return new GuestProgram(VBUS_GUEST_RESOURCE, in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** How a guest is told what to do: its two entry arguments (rdi, rsi). The modes of guest/vbus-guest.c. */
    public enum Mode {
        ENUMERATE(0), BAD_CALLS(1), SPIN(2), UD2(3), PING(4), OPEN(5), DOORBELL(6), DEVCALL(7),
        /** A venet round trip; the argument is the address of its parameters ({@link VenetRoundTrip}, at {@link GuestLayout#PARAMS}). */
        VENET(8),
        /** A virtio-net round trip over split rings; the argument is the address of its parameters ({@link VirtioNetRoundTrip}). */
        VIRTIO_NET(9),
        /**
         * Bus events: parameters {@code [devid of a virtio-net device, patience in TSC ticks]}. The guest registers its
         * event ring, opens the device, sleeps in WAIT, opens a device hot-added beside it, and once that one is
         * unplugged again, breaks its own device and waits for its NEEDS_RESET; reports {@code [ring entries, events
         * seen, (kind, devid, detail's first 8 bytes) per event (16 at most), lost, waits, wakes, DEVOPEN's result for
         * the hot-added device]}.
         */
        EVENTS(10),
        /** Doorbell kick to host wake-up: argument {@code devid | n << 32}; driven by {@link KickWakeProbe}. */
        KICK_WAKE(11),
        /** Answers ARP and ping on a virtio-net device until stopped; the argument is the address of its parameters ({@link Responder}). */
        RESPONDER(12);

        final long value;

        Mode(long value) { this.value = value; }
    }
}
