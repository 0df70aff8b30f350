package dev.jvbus.connector.vhostuser.protocol;

/** VHOST_USER_PROTOCOL_F_* bits we know; the back-end offers a subset (see the connector). */
public enum ProtocolFeature {
    MQ(0), LOG_SHMFD(1), RARP(2), REPLY_ACK(3), MTU(4), BACKEND_REQ(5), CROSS_ENDIAN(6), CRYPTO_SESSION(7),
    PAGEFAULT(8), CONFIG(9), BACKEND_SEND_FD(10), HOST_NOTIFIER(11), INFLIGHT_SHMFD(12), RESET_DEVICE(13),
    INBAND_NOTIFICATIONS(14), CONFIGURE_MEM_SLOTS(15), STATUS(16);

    private final int bit;

    ProtocolFeature(int bit) { this.bit = bit; }

    public int bit() { return bit; }

    public long mask() { return 1L << bit; }

    public boolean in(long bits) { return (bits & mask()) != 0; }

    public static long maskOf(ProtocolFeature... fs) {
        long m = 0;
        for (ProtocolFeature f : fs) m |= f.mask();
        return m;
    }
}
