package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.sys.UnixConnection;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A connection to one container's shm socket: the driver side of the native vbus protocol for host
 * processes, tests and benchmarks.
 *
 * <pre>{@code
 * try (BusClient bus = BusClient.connect(Path.of("/run/jvbus/tenant-a.sock"), "my-app")) {
 *     DevId id = bus.enumerate().getFirst().devid();
 *     try (ClientDevice dev = bus.open(id)) {
 *         dev.negotiate(wantedFeatures);
 *         ...
 *     }
 * }
 * }</pre>
 *
 * <p>Requests may come from any thread; each waits for its own reply (matched by seq). A reader
 * thread takes replies and events off the socket; events go to the {@link BusEventListener}.
 */
public final class BusClient implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(BusClient.class.getName());
    /** A reply slower than this means the bus is wedged; the control plane never takes this long. */
    private static final long REPLY_TIMEOUT_SECONDS = 30;

    private final FrameChannel channel;
    private final BusEventListener listener;
    private final AtomicInteger nextSeq = new AtomicInteger();
    private final Map<Integer, CompletableFuture<Reply>> pending = new ConcurrentHashMap<>();
    private final Thread reader;
    private volatile BusClientException lost;
    private volatile boolean closing;
    private Message.HelloAccepted accepted;
    /** The devices this client holds open, by devid: where a CONFIG_CHANGED is counted (never more than it opened). */
    private final Map<DevId, ClientDevice> opened = new ConcurrentHashMap<>();

    private BusClient(FrameChannel channel, BusEventListener listener) {
        this.channel = channel;
        this.listener = listener;
        this.reader = Thread.ofPlatform().daemon().name("jvbus-client-reader").unstarted(this::readLoop);
    }

    /** Connects and says HELLO; throws DENIED if this uid may not use the container. */
    public static BusClient connect(Path socket, String clientName) {
        return connect(socket, clientName, BusEventListener.NONE);
    }

    public static BusClient connect(Path socket, String clientName, BusEventListener listener) {
        BusClient c = new BusClient(new FrameChannel(UnixConnection.connect(socket)), listener);
        c.reader.start();
        try {
            Reply r = c.request(new Message.Hello(Wire.MIN_VERSION, Wire.VERSION, clientName));
            c.accepted = Codec.decodeHelloAccepted(r.payload());
            return c;
        } catch (ProtocolException e) {
            c.close();
            throw new BusClientException(e.code(), "bad HELLO reply: " + e.getMessage(), true);
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** The protocol version agreed in HELLO. */
    public int version() { return accepted.version(); }

    /** The container this connection is bound to. */
    public String container() { return accepted.container(); }

    /** The devices of this container, in devid order. */
    public List<Message.DeviceEntry> enumerate() {
        try {
            return Codec.decodeDeviceList(request(new Message.Enumerate()).payload()).devices();
        } catch (ProtocolException e) {
            throw new BusClientException(e.code(), "bad ENUMERATE reply: " + e.getMessage(), false);
        }
    }

    /** Opens a device: it is ours until closed (or until this process dies). */
    public ClientDevice open(DevId devid) {
        request(new Message.DevOpen(devid));
        return new ClientDevice(this, devid);
    }

    /**
     * Sends one request with its fds and waits for the reply.
     *
     * @throws BusClientException if the bus refused it or the connection is gone
     */
    Reply request(Message.Request m, int... fds) {
        return await(m, send(m, fds));
    }

    /** One request of a {@link #requestAll} batch, with the fds it carries. */
    record Outgoing(Message.Request message, int... fds) { }

    /**
     * Sends every request of {@code batch} without waiting for the replies in between, then waits for each: the bus
     * reads a connection's frames one after the other and answers each in order (PROTOCOL.md), so a batch costs one
     * round trip instead of one per request. Used where a move has the driver waiting: reopening a device on its new
     * bus (DEVOPEN, DEVSHM, SIGNAL). A request the bus refuses fails the batch, after every reply came (those after it
     * may be refused too: what a refused DEVOPEN leaves unopened).
     *
     * @throws BusClientException the first refusal, or the connection is gone
     */
    void requestAll(List<Outgoing> batch) {
        List<CompletableFuture<Reply>> sent = new java.util.ArrayList<>(batch.size());
        BusClientException first = null;
        for (Outgoing o : batch) {
            try {
                sent.add(send(o.message(), o.fds()));
            } catch (BusClientException e) {
                first = e;
                break;
            }
        }
        for (int i = 0; i < sent.size(); i++) {
            try {
                await(batch.get(i).message(), sent.get(i));
            } catch (BusClientException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    private CompletableFuture<Reply> send(Message.Request m, int... fds) {
        int seq = nextSeq.updateAndGet(s -> s == Integer.MAX_VALUE ? 1 : s + 1);   // 0 is for unasked messages
        CompletableFuture<Reply> f = new CompletableFuture<>();
        pending.put(seq, f);
        // Checked after registering: the reader sets lost before failing what is pending, so either we see it or it sees f.
        if (lost != null) {
            pending.remove(seq);
            throw lost;
        }
        try {
            channel.send(m, seq, fds);
        } catch (RuntimeException e) {
            pending.remove(seq);
            awaitReader();   // the bus may have said why (DENIED) just before closing
            if (lost != null) throw lost;
            throw new BusClientException("cannot send " + m.type() + ": " + e.getMessage(), e);
        }
        return f;
    }

    private Reply await(Message.Request m, CompletableFuture<Reply> f) {
        Reply r;
        try {
            r = f.get(REPLY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw (BusClientException) e.getCause();
        } catch (TimeoutException e) {
            pending.values().remove(f);
            throw new BusClientException(null, m.type() + ": no reply within " + REPLY_TIMEOUT_SECONDS + " s", false);
        } catch (InterruptedException e) {
            pending.values().remove(f);
            Thread.currentThread().interrupt();
            throw new BusClientException(m.type() + ": interrupted", e);
        }
        if (!r.isOk()) throw new BusClientException(r.error(), r.errorMessage(), false);
        return r;
    }

    private void awaitReader() {
        try {
            reader.join(1_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void readLoop() {
        BusClientException why = null;
        try {
            boolean open = true;
            while (open && why == null) {
                switch (channel.read()) {
                    case FrameChannel.EndOfStream eos -> {
                        open = false;   // an orderly close by us ends here too, with no reason to report
                        if (!closing) why = new BusClientException(null, "the bus closed the connection", true);
                    }
                    case FrameChannel.BrokenFrame broken ->
                            why = new BusClientException(null, "the bus sent a broken frame: " + broken.error().getMessage(), true);
                    case FrameChannel.Frame frame -> {
                        try (frame) {
                            why = dispatch(Codec.decode(frame.header(), frame.body(), frame.fds().count()), frame.header().seq());
                        } catch (ProtocolException e) {
                            why = new BusClientException(e.code(), "the bus sent a bad frame: " + e.getMessage(), true);
                        }
                    }
                }
            }
        } catch (RuntimeException e) {
            why = closing ? null : new BusClientException("connection failed: " + e.getMessage(), e);
        }
        BusClientException end = why != null ? why : new BusClientException(null, "the client closed the connection", true);
        lost = end;
        pending.values().forEach(f -> f.completeExceptionally(end));
        pending.clear();
        try {
            listener.onDisconnect(why);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "event listener failed on disconnect", e);
        }
    }

    /** Hands a reply to its waiter or an event to the listener; returns non-null if the connection must end. */
    private BusClientException dispatch(Message m, int seq) {
        switch (m) {
            case Reply r when seq == 0 -> {
                // The bus speaks unasked only to say it is closing (DENIED, BAD_FRAME).
                return new BusClientException(r.error(), r.errorMessage(), true);
            }
            case Reply r -> {
                CompletableFuture<Reply> f = pending.remove(seq);
                if (f != null) f.complete(r);
                else LOG.fine(() -> "reply for unknown seq " + seq + " (its waiter gave up)");
            }
            case Message.Event e -> {
                if (e instanceof Message.ConfigChanged c) {
                    ClientDevice d = opened.get(c.devid());
                    if (d != null) d.configChangedByBus();
                }
                try {
                    listener.onEvent(e);
                } catch (RuntimeException ex) {
                    LOG.log(Level.WARNING, "event listener failed on " + e, ex);
                }
            }
            case Message.Request q -> {
                return new BusClientException(ErrorCode.UNKNOWN_TYPE, "the bus sent a request (" + q.type() + ")", true);
            }
        }
        return null;
    }

    /** A handle on this connection took {@code d}'s devid (open, a move or a resume here); closing it lets go. */
    void held(ClientDevice d) { opened.put(d.devid(), d); }

    void released(ClientDevice d) { opened.remove(d.devid(), d); }

    /** True until the connection ends. */
    public boolean isConnected() { return lost == null; }

    /** Closes the connection; the bus resets and frees every device this client held. */
    @Override
    public void close() {
        closing = true;
        channel.close();
        awaitReader();
    }
}
