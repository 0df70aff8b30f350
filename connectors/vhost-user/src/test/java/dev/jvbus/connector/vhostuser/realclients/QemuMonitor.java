package dev.jvbus.connector.vhostuser.realclients;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * QEMU's human monitor (HMP) on a UNIX socket ({@code -monitor unix:<path>,server=on,wait=off}):
 * {@link #command} sends one line and returns what QEMU printed before its next {@code (qemu)} prompt.
 *
 * <pre>{@code
 * try (QemuMonitor m = QemuMonitor.connect(path, Duration.ofSeconds(10))) {
 *     m.command("migrate -d unix:/tmp/mig.sock");
 *     m.command("info migrate");   // "Migration status: active" ... "completed"
 * }
 * }</pre>
 */
public final class QemuMonitor implements AutoCloseable {
    private static final String PROMPT = "(qemu) ";

    private final SocketChannel channel;
    private final ByteBuffer in = ByteBuffer.allocate(64 * 1024);
    private final StringBuilder pending = new StringBuilder();

    private QemuMonitor(SocketChannel channel) {
        this.channel = channel;
    }

    /** The monitor's command line option for {@code socket}. */
    public static String[] qemuArgs(Path socket) {
        return new String[] {"-monitor", "unix:" + socket + ",server=on,wait=off"};
    }

    /** Connects once QEMU has created the socket, and reads its banner up to the first prompt. */
    public static QemuMonitor connect(Path socket, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (Files.exists(socket)) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    QemuMonitor m = new QemuMonitor(ch);
                    m.untilPrompt();
                    return m;
                } catch (IOException e) {
                    if (System.nanoTime() > deadline) throw e;
                }
            }
            if (System.nanoTime() > deadline) throw new IOException("no QEMU monitor at " + socket + " after " + timeout);
            Thread.sleep(50);
        }
    }

    /** Runs one HMP command; its output (the echoed command line and terminal escapes removed). */
    public synchronized String command(String line) throws IOException {
        channel.write(ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8)));
        String out = untilPrompt();
        // HMP echoes the line it read (with readline's escape sequences): drop everything up to the first newline.
        int nl = out.indexOf('\n');
        return (nl < 0 ? "" : out.substring(nl + 1)).replaceAll("\u001b\\[[0-9;]*[A-Za-z]", "").replace("\r", "").strip();
    }

    /** {@code quit}: QEMU exits without another prompt. */
    public synchronized void quit() throws IOException {
        channel.write(ByteBuffer.wrap("quit\n".getBytes(StandardCharsets.UTF_8)));
    }

    private String untilPrompt() throws IOException {
        while (true) {
            int at = pending.indexOf(PROMPT);
            if (at >= 0) {
                String out = pending.substring(0, at);
                pending.delete(0, at + PROMPT.length());
                return out;
            }
            in.clear();
            int n = channel.read(in);
            if (n < 0) throw new IOException("QEMU monitor closed; so far: " + pending);
            pending.append(new String(in.array(), 0, n, StandardCharsets.UTF_8));
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
