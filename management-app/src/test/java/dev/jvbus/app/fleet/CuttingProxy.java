package dev.jvbus.app.fleet;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A link between two buses' APIs that breaks at the worst moment: it forwards TCP both ways until a
 * request towards the target carries {@code mark} (say the request that asks it to start the device);
 * it forwards that request whole (its body too, by its Content-Length), then cuts every connection and refuses new ones, so the target acts
 * on the request and the sender never hears back. What a network partition at that instant does.
 */
final class CuttingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final byte[] mark;
    private final AtomicBoolean cut = new AtomicBoolean();
    private final List<Socket> open = new CopyOnWriteArrayList<>();
    private final Thread acceptor;

    CuttingProxy(String listenAddress, int port, InetSocketAddress target, String mark) throws IOException {
        this.server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getByName(listenAddress), port));
        this.target = target;
        this.mark = mark.getBytes(StandardCharsets.US_ASCII);
        this.acceptor = Thread.ofPlatform().daemon().name("cutting-proxy").start(this::accept);
    }

    /** Whether it cut the link (a request carried the mark). */
    boolean cut() { return cut.get(); }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket in = server.accept();
                if (cut.get()) {
                    in.close();
                    continue;
                }
                Socket out = new Socket();
                out.connect(target, 5_000);
                synchronized (open) {   // pairs: even = the sender's side, odd = the target's
                    open.add(in);
                    open.add(out);
                }
                Thread.ofPlatform().daemon().start(() -> pump(in, out, true));
                Thread.ofPlatform().daemon().start(() -> pump(out, in, false));
            } catch (IOException e) {
                if (server.isClosed()) return;
            }
        }
    }

    private void pump(Socket from, Socket to, boolean towardsTarget) {
        byte[] buf = new byte[256 * 1024];
        try {
            InputStream i = from.getInputStream();
            OutputStream o = to.getOutputStream();
            long bodyLeft = -1;   // of the marked request, once seen: its body may come in later reads
            for (int n; (n = i.read(buf)) > 0; ) {
                if (cut.get()) continue;   // from the target, after the cut: read and dropped, so it never meets a reset
                o.write(buf, 0, n);
                o.flush();
                boolean whole = false;
                if (bodyLeft > 0) {
                    bodyLeft -= n;
                    whole = bodyLeft <= 0;
                } else if (towardsTarget && contains(buf, n)) {
                    bodyLeft = bodyLeft(buf, n);
                    whole = bodyLeft <= 0;
                }
                if (whole) {
                    // The target has the whole request (a small POST comes in one read); it reads it, then the end of
                    // the stream, and acts on it. Nothing more passes either way.
                    cutAll();
                    return;
                }
            }
        } catch (IOException e) {
            // one side went away: so does the other
        }
        if (!cut.get()) {
            closeQuietly(from);
            closeQuietly(to);
        } else if (!towardsTarget) {
            closeQuietly(from);   // the target closed its side after answering into the void
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    /**
     * How much of the marked request's body is still to come after this read (its headers are in it, as a client
     * writes them at once): Content-Length less what followed the headers here. So the target gets the whole request,
     * a large body too, before the link breaks.
     */
    private static long bodyLeft(byte[] buf, int n) {
        String head = new String(buf, 0, n, StandardCharsets.ISO_8859_1);
        int end = head.indexOf("\r\n\r\n");
        if (end < 0) return 0;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?im)^content-length:\\s*(\\d+)").matcher(head.substring(0, end));
        long length = m.find() ? Long.parseLong(m.group(1)) : 0;
        return Math.max(0, length - (n - end - 4));
    }

    private boolean contains(byte[] buf, int n) {
        outer:
        for (int at = 0; at + mark.length <= n; at++) {
            for (int k = 0; k < mark.length; k++) if (buf[at + k] != mark[k]) continue outer;
            return true;
        }
        return false;
    }

    /** The sender's side closes; the target's side only ends its output (it still reads what came, and answers into the void). */
    private void cutAll() {
        cut.set(true);
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (int k = 0; k < open.size(); k++) {
            Socket s = open.get(k);
            if (k % 2 == 0) {
                closeQuietly(s);
            } else {
                try {
                    s.shutdownOutput();
                } catch (IOException ignored) {
                    // gone already
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        cutAll();
        for (Socket s : open) closeQuietly(s);
        try {
            acceptor.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
