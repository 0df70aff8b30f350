package dev.jvbus.connector.vhostuser.hostile;

import static dev.jvbus.connector.shm.client.ChildLines.awaitLine;
import static dev.jvbus.connector.shm.client.ChildLines.field;
import static dev.jvbus.connector.shm.client.ChildLines.line;
import static dev.jvbus.connector.shm.client.ChildLines.say;

import dev.jvbus.connector.shm.client.NetClientProcess;
import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.net.MacAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;

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

}
