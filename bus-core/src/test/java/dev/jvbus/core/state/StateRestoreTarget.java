package dev.jvbus.core.state;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Fuzz target: a saved device state from elsewhere, through {@link StateCodec#decode} and
 * {@link Container#restoreDevice}. The input is either raw bytes taken as the file, or (FUZZING.md) a
 * {@link DeviceState} built from the input's fields, encoded, and then damaged byte by byte, so the
 * fuzzer reaches past the JSON parser into the restore checks. What must hold:
 * <ul>
 *   <li>decoding refuses with {@link StateFormatException} only, restoring with {@link BusException} or
 *       {@link DeviceException} only;
 *   <li>what decodes encodes back to the same state; what restores saves to a state that restores again
 *       on another container to the same saved state;
 *   <li>a refused restore leaves no device behind and does not use up the devid;
 *   <li>a healthy device in another container keeps its status and still saves.
 * </ul>
 */
final class StateRestoreTarget {
    private static final ModelStateSchemas SCHEMAS = dev.jvbus.core.spi.DeviceModels.discover()::stateSchema;
    private static Bus bus;
    private static Device healthy;
    private static DeviceState healthyState;

    static synchronized void run(byte[] bytes) {
        if (bus == null) {
            bus = Bus.withDiscoveredModels();
            healthy = bus.createContainer("healthy").addDevice(EchoModel.TYPE);
            healthyState = healthy.save();
        }
        EchoModel.CREATED.clear();   // the test model keeps every function it made: not for millions of runs
        FuzzInput in = new FuzzInput(bytes);
        byte[] file = in.bit() ? in.rest() : damaged(in);
        DeviceState s;
        try {
            s = StateCodec.decode(file, SCHEMAS);
        } catch (StateFormatException refused) {
            s = null;
        }
        if (s != null) {
            DeviceState again = StateCodec.decode(StateCodec.encode(s), SCHEMAS);
            if (!again.equals(s)) throw new AssertionError("decode(encode(s)) != s:\n" + s + "\n" + again);
            restore(s, in.bit() ? -1L : in.u64());
        }
        if (!healthy.status().equals(new DeviceStatus(healthyState.status())) || !healthy.save().equals(healthyState))
            throw new AssertionError("the healthy device changed: " + healthy.save());
    }

    private static void restore(DeviceState s, long limit) {
        Container first = bus.createContainer("fuzz-a");
        Container second = bus.createContainer("fuzz-b");
        try {
            Device d;
            try {
                d = first.restoreDevice(s, limit);
            } catch (BusException | DeviceException refused) {
                if (!first.devices().isEmpty()) throw new AssertionError("a refused restore left " + first.devices());
                if (s.devid() != 0 && EchoModel.TYPE.equals(s.type()))
                    first.restoreDevice(plain(s.devid()));   // the devid was not used up by the refusal
                return;
            }
            DeviceState saved = d.save();
            if (!StateCodec.decode(StateCodec.encode(saved), SCHEMAS).equals(saved))
                throw new AssertionError("a restored device's state does not survive the codec: " + saved);
            DeviceState again = second.restoreDevice(saved, limit).save();
            if (!again.equals(saved)) throw new AssertionError("restore(save(restore(s))) differs:\n" + saved + "\n" + again);
        } finally {
            bus.destroyContainer("fuzz-a");
            bus.destroyContainer("fuzz-b");
        }
    }

    private static DeviceState plain(int devid) {
        return new DeviceState(EchoModel.TYPE, devid, 0, -1L, 0, new byte[8], List.of(), Map.of(), EchoModel.EchoState.ZERO);
    }

    /** A state made of the input's fields, encoded, then up to 8 bytes replaced, dropped or inserted. */
    private static byte[] damaged(FuzzInput in) {
        byte[] json = StateCodec.encode(built(in));
        for (int k = in.below(9); k > 0 && json.length > 0; k--) {
            int at = in.below(json.length);
            json = switch (in.below(3)) {
                case 0 -> { json[at] = (byte) in.u8(); yield json; }
                case 1 -> concat(Arrays.copyOf(json, at), Arrays.copyOfRange(json, at + 1, json.length));
                default -> concat(Arrays.copyOf(json, at), new byte[] {(byte) in.u8()}, Arrays.copyOfRange(json, at, json.length));
            };
        }
        return json;
    }

    private static DeviceState built(FuzzInput in) {
        String type = switch (in.below(8)) {
            case 0 -> "virtio-net";
            case 1 -> new String(in.bytes(in.below(8)), StandardCharsets.UTF_8);
            default -> EchoModel.TYPE;
        };
        int devid = in.bit() ? 1 + in.below(16) : in.u32();
        int status = in.u8();
        long limit = in.bit() ? -1L : in.u64();
        long negotiated = in.bit() ? featureBits(in.u8()) : in.u64();
        byte[] config = in.bytes(in.bit() ? 8 : in.below(16));
        List<QueueState> queues = new ArrayList<>();
        for (int n = in.below(4); n > 0; n--) queues.add(queue(in));
        Map<String, String> params = switch (in.below(4)) {
            case 0 -> Map.of("label", "x");
            case 1 -> Map.of("colour", "red");
            default -> Map.of();
        };
        return new DeviceState(type, devid, status, limit, negotiated, config, queues, params,
                new EchoModel.EchoState(in.bit() ? 0 : in.u32() & 0xffff_ffffL));
    }

    /** The echo model's bits (0, 1, INDIRECT_DESC 28, EVENT_IDX 29, VERSION_1 32) and one it does not know. */
    private static long featureBits(int pick) {
        long[] bits = {1L, 2L, 1L << 28, 1L << 29, 1L << 32, 1L << 40};
        long mask = 0;
        for (int i = 0; i < bits.length; i++) if ((pick & (1 << i)) != 0) mask |= bits[i];
        return mask;
    }

    private static QueueState queue(FuzzInput in) {
        RingKind kind = in.below(4) == 0 ? RingKind.IOQ : RingKind.SPLIT;
        int size = in.bit() ? 256 : 1 << in.below(17);
        List<Integer> inFlight = new ArrayList<>();
        for (int n = in.below(4); n > 0; n--) inFlight.add(in.bit() ? in.u8() : in.u32());
        return new QueueState(in.below(3), kind, size, in.bit(), in.u16() * 16L, in.u16() * 16L, in.u16() * 16L,
                in.bit() ? in.u16() : in.u32(), in.bit() ? in.u16() : in.u32(), in.bit(), inFlight);
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
