package dev.jvbus.core.testing.fuzz;

/**
 * A fuzz input read as a little program: every value a target needs is taken from the front of the
 * bytes, little-endian, and an exhausted input reads as zeros. The reading is the whole format, so a
 * corpus file means the same to Jazzer's libFuzzer mode, to the regression replay and to anybody who
 * writes a seed by hand (see {@code FUZZING.md} for the opcodes of each target).
 */
public final class FuzzInput {
    private final byte[] data;
    private int pos;

    public FuzzInput(byte[] data) {
        this.data = data;
    }

    /** True while unread bytes remain: a target's op loop runs until the input is used up. */
    public boolean more() { return pos < data.length; }

    public int u8() { return pos < data.length ? data[pos++] & 0xff : 0; }

    public int u16() { return u8() | u8() << 8; }

    public int u32() { return u16() | u16() << 16; }

    public long u64() { return (u32() & 0xffff_ffffL) | (long) u32() << 32; }

    public boolean bit() { return (u8() & 1) != 0; }

    /** A value in {@code [0, bound)}; bound must be positive. */
    public int below(int bound) {
        return Integer.remainderUnsigned(bound <= 256 ? u8() : bound <= 65536 ? u16() : u32(), bound);
    }

    /** The next {@code n} bytes (zeros past the end). */
    public byte[] bytes(int n) {
        byte[] out = new byte[n];
        for (int i = 0; i < n; i++) out[i] = (byte) u8();
        return out;
    }

    /** Every byte not read yet. */
    public byte[] rest() {
        byte[] out = java.util.Arrays.copyOfRange(data, Math.min(pos, data.length), data.length);
        pos = data.length;
        return out;
    }
}
