package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.PayloadReader;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.QueueConfig;

/**
 * The bus side of DEVCALL: a bus call (0x01..0x0c) or a model call (0x100 on) applied to an
 * attachment, with its payload laid out as PROTOCOL.md says. Transport-neutral, so a func means the
 * same thing on every connector that carries DEVCALL: the shm {@link Session} calls it with the
 * payload of a frame, the KVM connector with a payload read from guest memory.
 */
public final class BusCalls {
    private static final byte[] NOTHING = new byte[0];

    private BusCalls() {}

    /**
     * What a call returned, and whether it reset the device (SET_STATUS 0): the connector then
     * releases the memory and doorbells it held for the device, which nothing uses any more.
     */
    public record Outcome(byte[] reply, boolean reset) {}

    /**
     * Applies {@code func} to {@code a}. Every refusal is a {@link ProtocolException} with the code a
     * REPLY would carry (BAD_MESSAGE for a malformed payload or an unknown bus call, DEVICE_ERROR for
     * what the device refused); the caller's device and session stay usable.
     */
    public static Outcome call(Attachment a, int func, byte[] payload) throws ProtocolException {
        PayloadReader in = new PayloadReader(BusCall.name(func), payload);
        boolean reset = false;
        try {
            byte[] out = switch (BusCall.of(func)) {
                case GET_FEATURES -> { in.end(); yield BusCall.u64(a.offeredFeatures()); }
                case SET_FEATURES -> {
                    long bits = in.u64("features");
                    in.end();
                    a.ackFeatures(bits);
                    yield NOTHING;
                }
                case GET_STATUS -> { in.end(); yield BusCall.u32(a.status().bits()); }
                case SET_STATUS -> {
                    int status = in.u32("status");
                    in.end();
                    a.writeStatus(status);
                    reset = status == 0;
                    yield BusCall.u32(a.status().bits());
                }
                case READ_CONFIG -> {
                    int offset = in.u32("offset"), length = in.u32("length");
                    in.end();
                    if (length < 0 || length > Wire.MAX_FRAME / 2)
                        throw new ProtocolException(ErrorCode.BAD_MESSAGE, "READ_CONFIG length " + Integer.toUnsignedString(length) + " is too large");
                    yield a.readConfig(offset, length);
                }
                case WRITE_CONFIG -> {
                    int offset = in.u32("offset");
                    a.writeConfig(offset, in.rest());
                    yield NOTHING;
                }
                case CONFIG_GENERATION -> { in.end(); yield BusCall.u32(a.configGeneration()); }
                case SET_QUEUE -> {
                    QueueConfig q = new QueueConfig(in.u16("queue"), in.u16("size"), in.u64("desc"), in.u64("avail"), in.u64("used"));
                    in.end();
                    a.setQueue(q);
                    yield NOTHING;
                }
                case ENABLE_QUEUE -> {
                    int queue = in.u16("queue");
                    boolean enable = in.u8("enable") != 0;
                    in.end();
                    a.enableQueue(queue, enable);
                    yield NOTHING;
                }
                case GET_NEGOTIATED -> { in.end(); yield BusCall.u64(a.negotiatedFeatures()); }
                case RESUME_DRIVER -> {
                    long features = in.u64("features");
                    in.end();
                    DriverResume.features(a, features);
                    yield NOTHING;
                }
                case RESUME_QUEUE -> {
                    QueueConfig q = new QueueConfig(in.u16("queue"), in.u16("size"), in.u64("desc"), in.u64("avail"), in.u64("used"));
                    in.end();
                    yield BusCall.u16(DriverResume.queue(a, q));
                }
                case null -> {
                    if (Integer.compareUnsigned(func, BusCall.MODEL_BASE) < 0)
                        throw new ProtocolException(ErrorCode.BAD_MESSAGE, "unknown bus call 0x" + Integer.toHexString(func)
                                + "; bus calls are 0x01..0x0c, model calls start at 0x100");
                    // Models number their verbs from 0; the wire offsets them past the bus's own.
                    yield a.call(func - BusCall.MODEL_BASE, payload);
                }
            };
            return new Outcome(out, reset);
        } catch (DeviceFault f) {
            throw new ProtocolException(ErrorCode.DEVICE_ERROR, "device " + a.devid() + ": " + f.getMessage());
        } catch (DeviceException e) {
            throw new ProtocolException(ErrorCode.DEVICE_ERROR, e.getMessage());
        }
    }
}
