package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;

/**
 * A vhost-user front-end in its own JVM, for claims about the peer's pid: {@code connect <socket>}
 * connects to a back-end in server mode; {@code listen <socket>} listens (printing {@code LISTENING})
 * for a back-end in client mode. Either way it negotiates VERSION_1 and EVENT_IDX, prints
 * {@code NEGOTIATED pid=<pid> features=<decimal>}, then waits until the back-end hangs up and prints
 * {@code HUNG-UP}.
 */
public final class FrontEndProcess {
    static final long FEATURES = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask();

    public static void main(String[] args) throws Exception {
        Path socket = Path.of(args[1]);
        FrontEnd fe;
        if (args[0].equals("listen")) {
            java.nio.file.Files.deleteIfExists(socket);   // a killed front-end before us left its socket file, as QEMU would
            UnixListener listener = UnixListener.bind(socket, 1);
            System.out.println("LISTENING");
            System.out.flush();
            UnixConnection conn = listener.accept();
            fe = new FrontEnd(conn);
        } else {
            fe = new FrontEnd(socket);
        }
        fe.send(Request.SET_OWNER);
        fe.send(Request.GET_FEATURES);
        long offered = fe.replyU64(Request.GET_FEATURES);
        fe.sendU64(Request.SET_FEATURES, offered & FEATURES);
        fe.send(Request.GET_FEATURES);   // a request with a reply: SET_FEATURES is done once it comes
        fe.replyU64(Request.GET_FEATURES);
        System.out.println("NEGOTIATED pid=" + ProcessHandle.current().pid() + " features=" + (offered & FEATURES));
        System.out.flush();
        while (!fe.closedByPeer()) { /* a back-end sends nothing unasked; only the end of stream comes */ }
        System.out.println("HUNG-UP");
        System.out.flush();
        System.exit(0);
    }
}
