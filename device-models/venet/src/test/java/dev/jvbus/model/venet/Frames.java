package dev.jvbus.model.venet;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.util.UUID;

/** Test frames: dst, src, ethertype 0x88B5, an 8-byte sequence number, then a pattern derived from it. */
final class Frames {
    private Frames() {}

    static byte[] frame(long dst, long src, int length, long seq) {
        byte[] f = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(f);
        b.put(MacAddress.toBytes(dst)).put(MacAddress.toBytes(src)).putShort((short) 0x88B5);
        if (length >= 22) b.putLong(seq);
        for (int i = 22; i < length; i++) f[i] = (byte) (seq * 31 + i);
        return f;
    }

    static long seq(byte[] f) {
        return ByteBuffer.wrap(f).getLong(14);
    }

    /** A bus with the models this module's class path has (venet), and a container with a name no other test uses. */
    static Container container() {
        Bus bus = new Bus(DeviceModels.discover(Frames.class.getClassLoader()));
        return bus.createContainer("t-" + UUID.randomUUID());
    }
}
