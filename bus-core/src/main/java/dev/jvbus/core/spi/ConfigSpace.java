package dev.jvbus.core.spi;

import java.util.Arrays;

/**
 * The bytes of one device's config space, laid out by its model's {@link ConfigLayout}.
 * Little-endian, as virtio 1.x requires. The device reads and writes it for the driver; the
 * model's function writes it directly (e.g. link status), on a control thread or, for a change its driver
 * asked for on a queue (virtio-net's MAC_ADDR_SET), on that queue's worker: every access takes this
 * space's own lock (a leaf: nothing is called while holding it), so a reader never sees half a write.
 */
public final class ConfigSpace {
    private final ConfigLayout layout;
    private final byte[] bytes;
    private int generation;

    public ConfigSpace(ConfigLayout layout) {
        this.layout = layout;
        this.bytes = new byte[layout.size()];
    }

    public ConfigLayout layout() { return layout; }

    public int size() { return bytes.length; }

    /** virtio's config_generation: bumps on every device-side change so the driver can read consistently. */
    public synchronized int generation() { return generation; }

    public synchronized byte[] read(int offset, int length) {
        check(offset, length);
        return Arrays.copyOfRange(bytes, offset, offset + length);
    }

    /** Device-side write (model or restore); bumps the generation. */
    public synchronized void write(int offset, byte[] data) {
        check(offset, data.length);
        System.arraycopy(data, 0, bytes, offset, data.length);
        generation++;
    }

    public synchronized void writeLE(int offset, int width, long value) {
        check(offset, width);
        for (int i = 0; i < width; i++) bytes[offset + i] = (byte) (value >>> (8 * i));
        generation++;
    }

    public synchronized void write(String field, long value) {
        ConfigField f = layout.field(field).orElseThrow(() -> new IllegalArgumentException("no config field " + field));
        writeLE(f.offset(), f.width(), value);
    }

    public synchronized void write(String field, byte[] value) {
        ConfigField f = layout.field(field).orElseThrow(() -> new IllegalArgumentException("no config field " + field));
        if (value.length != f.width()) throw new IllegalArgumentException(field + " is " + f.width() + " bytes, got " + value.length);
        write(f.offset(), value);
    }

    public synchronized byte[] snapshot() {
        return bytes.clone();
    }

    /** Restore: replace the whole space. */
    public synchronized void restore(byte[] saved) {
        if (saved.length != bytes.length)
            throw new IllegalArgumentException("saved config space is " + saved.length + " bytes, this model's is " + bytes.length);
        System.arraycopy(saved, 0, bytes, 0, bytes.length);
        generation++;
    }

    private void check(int offset, int length) {
        if (offset < 0 || length < 0 || offset > bytes.length - length)
            throw new IndexOutOfBoundsException("config access [" + offset + ", +" + length + ") outside " + bytes.length + "-byte space");
    }
}
