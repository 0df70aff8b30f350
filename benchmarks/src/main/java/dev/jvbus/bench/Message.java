package dev.jvbus.bench;

import org.agrona.MutableDirectBuffer;

/** Layout of a benchmark message: the sequence number at offset 0 and again in the last 8 bytes. */
public final class Message {
    private Message() {}

    public static final int MIN_SIZE = 16;

    /** Fills a fresh message buffer with a recognisable pattern (the stamps are written per send). */
    public static void init(MutableDirectBuffer buf, int size) {
        for (int i = 0; i < size; i++) buf.putByte(i, (byte) (i * 31 + 7));
    }

    public static void stamp(MutableDirectBuffer buf, int size, long seq) {
        buf.putLong(0, seq);
        buf.putLong(size - 8, seq);
    }

    /** Counts sequence errors: a message out of order, torn (head != tail) or of the wrong length. */
    public static final class Checker implements MessageSink {
        private final int size;
        private long expected;
        private long errors;
        private long received;

        public Checker(int size) { this.size = size; }

        @Override
        public void onMessage(long headSeq, long tailSeq, int length) {
            if (headSeq != expected || tailSeq != headSeq || length != size) {
                if (errors < 5) {
                    System.err.printf("seq error: expected %d, got head %d tail %d length %d%n",
                            expected, headSeq, tailSeq, length);
                }
                errors++;
            }
            expected = headSeq + 1;
            received++;
        }

        public long errors() { return errors; }

        public long received() { return received; }
    }
}
