package dev.jvbus.core.testing.fuzz;

import dev.jvbus.core.sys.Received;
import dev.jvbus.core.sys.UnixConnection;

/** A hostile peer's reading side: it takes whatever the bus sends, closing any fd that comes along, until the bus hangs up. */
public final class Drain {
    private Drain() {}

    public static void untilClosed(UnixConnection conn) {
        byte[] buf = new byte[4096];
        try {
            while (true) {
                try (Received r = conn.recv(buf, 0, buf.length, 4)) {
                    if (r.endOfStream()) return;
                }
            }
        } catch (RuntimeException closed) {
            // the connection went: done
        }
    }
}
