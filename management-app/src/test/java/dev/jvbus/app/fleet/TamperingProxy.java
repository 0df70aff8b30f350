package dev.jvbus.app.fleet;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A man in the middle between two buses' APIs: it forwards TCP both ways and, on the way to the
 * target, changes one digit after {@code "nextAvail":} (a queue position inside a state document's
 * {@code state}, which its checksum covers). The JSON stays valid and the length the same, so only
 * the checksum can tell: what a flipped bit on a real link, or a tampering middlebox, would do.
 */
final class TamperingProxy implements AutoCloseable {
    private static final byte[] MARK = "\"nextAvail\":".getBytes(StandardCharsets.US_ASCII);
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final AtomicInteger tampered = new AtomicInteger();
    private final Thread acceptor;

    TamperingProxy(String listenAddress, int port, InetSocketAddress target) throws IOException {
        this.server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getByName(listenAddress), port));
        this.target = target;
        this.acceptor = Thread.ofPlatform().daemon().name("tampering-proxy").start(this::accept);
    }

    /** How many state documents it changed. */
    int tampered() { return tampered.get(); }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket in = server.accept();
                Socket out = new Socket();
                out.connect(target, 5_000);
                Thread.ofPlatform().daemon().start(() -> pump(in, out, true));
                Thread.ofPlatform().daemon().start(() -> pump(out, in, false));
            } catch (IOException e) {
                if (server.isClosed()) return;
            }
        }
    }

    private void pump(Socket from, Socket to, boolean towardsTarget) {
        byte[] buf = new byte[256 * 1024];
        try (from; to) {
            InputStream i = from.getInputStream();
            OutputStream o = to.getOutputStream();
            for (int n; (n = i.read(buf)) > 0; ) {
                if (towardsTarget) tamper(buf, n);
                o.write(buf, 0, n);
                o.flush();
            }
        } catch (IOException e) {
            // one side went away: so does the other
        }
    }

    private void tamper(byte[] buf, int n) {
        outer:
        for (int at = 0; at + MARK.length < n; at++) {
            for (int k = 0; k < MARK.length; k++) if (buf[at + k] != MARK[k]) continue outer;
            int d = at + MARK.length;
            if (buf[d] >= '0' && buf[d] <= '9') {
                buf[d] = (byte) (buf[d] == '9' ? '8' : buf[d] + 1);
                tampered.incrementAndGet();
                return;
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        try {
            acceptor.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
