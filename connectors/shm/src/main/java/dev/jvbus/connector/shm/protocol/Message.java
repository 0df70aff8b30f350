package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.bus.DevId;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;

/** Every message of the shm protocol. Fds travel beside the message, in the frame. */
public sealed interface Message {

    MessageType type();

    /** Client to bus. */
    sealed interface Request extends Message { }

    /** Bus to client, unasked (seq 0). */
    sealed interface Event extends Message { }

    record Hello(int minVersion, int maxVersion, String client) implements Request {
        public Hello { Objects.requireNonNull(client); }
        @Override public MessageType type() { return MessageType.HELLO; }
    }

    record Enumerate() implements Request {
        @Override public MessageType type() { return MessageType.ENUMERATE; }
    }

    record DevOpen(DevId devid) implements Request {
        @Override public MessageType type() { return MessageType.DEVOPEN; }
    }

    record DevClose(DevId devid) implements Request {
        @Override public MessageType type() { return MessageType.DEVCLOSE; }
    }

    /** A verb on an open device: bus verbs below 0x100 (see {@link BusCall}), model verbs from 0x100. */
    record DevCall(DevId devid, int func, byte[] payload) implements Request {
        public DevCall { payload = payload.clone(); }
        @Override public byte[] payload() { return payload.clone(); }
        @Override public MessageType type() { return MessageType.DEVCALL; }
        @Override public boolean equals(Object o) {
            return o instanceof DevCall c && c.devid.equals(devid) && c.func == func && java.util.Arrays.equals(c.payload, payload);
        }
        @Override public int hashCode() { return Objects.hash(devid, func, java.util.Arrays.hashCode(payload)); }
    }

    /** Shares memory with an open device: {@code size} bytes of the fd at {@code offset}, seen at {@code guestAddress}. One fd. */
    record DevShm(DevId devid, long guestAddress, long size, long offset) implements Request {
        @Override public MessageType type() { return MessageType.DEVSHM; }
    }

    /** Doorbells of one queue: fd 0 is the kick (client to bus), fd 1 the call (bus to client). Two fds. */
    record Signal(DevId devid, int queue) implements Request {
        @Override public MessageType type() { return MessageType.SIGNAL; }
    }

    /** The answer to a request, with the request's seq. Status 0 is success; otherwise the payload is a UTF-8 message. */
    record Reply(int status, byte[] payload) implements Message {
        public Reply { payload = payload.clone(); }
        @Override public byte[] payload() { return payload.clone(); }
        @Override public MessageType type() { return MessageType.REPLY; }

        public static Reply ok(byte[] payload) { return new Reply(0, payload); }

        public static Reply ok() { return new Reply(0, new byte[0]); }

        public static Reply error(ErrorCode code, String message) {
            return new Reply(code.code(), message.getBytes(StandardCharsets.UTF_8));
        }

        public boolean isOk() { return status == 0; }

        public ErrorCode error() { return ErrorCode.of(status); }

        public String errorMessage() { return new String(payload, StandardCharsets.UTF_8); }

        @Override public boolean equals(Object o) {
            return o instanceof Reply r && r.status == status && java.util.Arrays.equals(r.payload, payload);
        }
        @Override public int hashCode() { return 31 * status + java.util.Arrays.hashCode(payload); }
        @Override public String toString() {
            return isOk() ? "Reply[ok, " + payload.length + " bytes]" : "Reply[" + error() + ": " + errorMessage() + "]";
        }
    }

    record DevAdd(DevId devid, String deviceType) implements Event {
        @Override public MessageType type() { return MessageType.DEVADD; }
    }

    record DevDrop(DevId devid) implements Event {
        @Override public MessageType type() { return MessageType.DEVDROP; }
    }

    record NeedsReset(DevId devid, String reason) implements Event {
        @Override public MessageType type() { return MessageType.NEEDS_RESET; }
    }

    /**
     * Version 2: the device moves to another bus, where it waits restored and paused for this client
     * to open it as {@code devidThere} on the socket {@code socket} (of container {@code container}
     * there) and to share the same memory and doorbells again; {@code bus} names that bus (its API).
     */
    record Moved(DevId devid, String bus, String container, DevId devidThere, String socket) implements Event {
        public Moved {
            Objects.requireNonNull(bus);
            Objects.requireNonNull(container);
            Objects.requireNonNull(devidThere);
            Objects.requireNonNull(socket);
        }
        @Override public MessageType type() { return MessageType.MOVED; }
    }

    /**
     * Version 3: the device changed its config space on its own and asks its driver to read it again
     * (virtio's configuration change notification; virtio-net's announce request after a restore, say).
     */
    record ConfigChanged(DevId devid) implements Event {
        @Override public MessageType type() { return MessageType.CONFIG_CHANGED; }
    }

    /** One ENUMERATE entry. */
    record DeviceEntry(DevId devid, String deviceType) { }

    /** The reply payload of ENUMERATE, decoded. {@code complete} is false if the list was cut to fit one frame. */
    record DeviceList(List<DeviceEntry> devices, boolean complete) {
        public DeviceList { devices = List.copyOf(devices); }
    }

    /** The reply payload of a successful HELLO: the version the session speaks and the container it is bound to. */
    record HelloAccepted(int version, String container) { }
}
