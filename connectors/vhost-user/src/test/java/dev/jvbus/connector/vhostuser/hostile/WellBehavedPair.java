package dev.jvbus.connector.vhostuser.hostile;

import dev.jvbus.connector.shm.client.NetClientProcess;
import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.net.MacAddress;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The well-behaved tenant: two client processes, each in its own JVM, driving devices A and B over
 * the shm connector ({@link NetClientProcess} streaming). A streams numbered frames of 60..1514 bytes
 * to B until stopped; B checks every frame arrives once, in order and intact, and acks through the
 * same switch, so A never has more in flight than B has rx buffers: zero drops by construction (see
 * {@code FramesAcrossProcessesTest}). Whatever the attacks do, a frame of A's that does not arrive,
 * arrives twice or arrives changed fails B; a frame from anyone else that reaches A or B fails them too.
 */
final class WellBehavedPair implements AutoCloseable {
    static final int RX_BUFFER = 1024, RX_RING = 1024;

    /** What the two processes counted, once stopped. */
    record Totals(long sent, long received, long acksSent, long acksTaken, long bytes, String senderLine, String receiverLine) { }

    final ChildJvm sender, receiver;

    private WellBehavedPair(ChildJvm sender, ChildJvm receiver) {
        this.sender = sender;
        this.receiver = receiver;
    }

    /** Starts both processes, waits until both drove their device to DRIVER_OK, and lets A go. */
    static WellBehavedPair start(Lan lan) throws InterruptedException {
        String socket = lan.socket.toString();
        ChildJvm receiver = ChildJvm.start(List.of("-Xmx64m"), NetClientProcess.class, "receive", socket, lan.b.devid().toString(),
                MacAddress.toString(Lan.MAC_A), "stream", "" + RX_BUFFER, "0", "0", "false");
        ChildJvm sender = ChildJvm.start(List.of("-Xmx64m"), NetClientProcess.class, "send", socket, lan.a.devid().toString(),
                MacAddress.toString(Lan.MAC_B), "stream", "" + RX_BUFFER, "" + RX_RING, "" + RX_BUFFER, "true");
        WellBehavedPair pair = new WellBehavedPair(sender, receiver);
        try {
            awaitLine(receiver, "READY", 60, sender);
            awaitLine(sender, "READY", 60, receiver);
            say(sender, "go");
            return pair;
        } catch (RuntimeException | AssertionError | InterruptedException e) {
            pair.close();
            throw e;
        }
    }

    /** Fails with both processes' output if either has died (a frame lost, duplicated, changed, or a stranger's). */
    void checkAlive() {
        if (!sender.process().isAlive() || !receiver.process().isAlive())
            throw new AssertionError("a well-behaved client process ended under attack:\n" + outputs());
    }

    /** Stops A's stream and tells B how many frames A sent; both report what they counted once B has them all and A has their ack. */
    Totals stop() throws InterruptedException {
        checkAlive();
        say(sender, "stop");
        awaitLine(sender, "STOPPED", 60, receiver);
        say(receiver, "stop " + field(line(sender, "STOPPED"), "frames"));
        awaitLine(receiver, "RECEIVED", 120, sender);
        awaitLine(sender, "SENT", 60, receiver);
        String s = line(sender, "SENT"), r = line(receiver, "RECEIVED");
        return new Totals(field(s, "frames"), field(r, "frames"), field(r, "acks"), field(s, "acks"), field(r, "bytes"), s, r);
    }

    /** Lets both close their devices in order; both must exit 0. */
    void quit() throws InterruptedException {
        for (ChildJvm child : List.of(sender, receiver)) {
            say(child, "quit");
            if (child.waitFor(30, TimeUnit.SECONDS) != 0 || !child.output().contains("CLOSED"))
                throw new AssertionError("a well-behaved client did not close cleanly:\n" + child.output());
        }
    }

    String outputs() {
        return "--- sender (A, pid " + sender.pid() + "):\n" + sender.output() + "\n--- receiver (B, pid " + receiver.pid() + "):\n" + receiver.output();
    }

    @Override
    public void close() {
        sender.close();
        receiver.close();
    }

    static long field(String line, String key) {
        Matcher m = Pattern.compile("\\b" + key + "=([0-9.]+)").matcher(line);
        if (!m.find()) throw new AssertionError("no " + key + " in: " + line);
        return (long) Double.parseDouble(m.group(1));
    }

    static String line(ChildJvm child, String prefix) {
        return completeLine(child.output(), prefix)
                .orElseThrow(() -> new AssertionError("no " + prefix + " line; output:\n" + child.output()));
    }

    /** The first whole line (ended by a newline: the child may be mid-write) that starts with {@code prefix}. */
    static Optional<String> completeLine(String output, String prefix) {
        int end = output.lastIndexOf('\n');
        if (end < 0) return Optional.empty();
        return Arrays.stream(output.substring(0, end).split("\n")).filter(l -> l.startsWith(prefix)).findFirst();
    }

    /** Waits for {@code child}'s line; gives up at once, with everyone's output, when either of them died. */
    static void awaitLine(ChildJvm child, String prefix, int seconds, ChildJvm peer) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (completeLine(child.output(), prefix).isEmpty()) {
            if (!child.process().isAlive() || !peer.process().isAlive() || System.nanoTime() > deadline)
                throw new AssertionError("child " + child.pid() + " never printed " + prefix + " within " + seconds + " s; its output:\n"
                        + child.output() + "\npeer " + peer.pid() + ":\n" + peer.output());
            Thread.sleep(20);
        }
    }

    static void say(ChildJvm child, String line) {
        try {
            OutputStream in = child.process().getOutputStream();
            in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            in.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot tell child " + child.pid() + " '" + line + "'", e);
        }
    }
}
