package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.testing.ChildJvm;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, unit = TimeUnit.SECONDS) // hang guard only
class UnixSocketTest {
    @TempDir
    Path dir;

    @Test
    void passesAMemfdAndTwoEventfdsInOneMessage() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); Memfd mem = Memfd.create("pass", 4096);
                EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            mem.segment().set(ValueLayout.JAVA_LONG, 0, 42);
            pair.first().sendAll("SHM".getBytes(StandardCharsets.US_ASCII), mem.fd(), kick.fd(), call.fd());

            byte[] buf = new byte[16];
            try (Received r = pair.second().recv(buf, 0, buf.length, 3)) {
                assertThat(r.length()).isEqualTo(3);
                assertThat(new String(buf, 0, 3, StandardCharsets.US_ASCII)).isEqualTo("SHM");
                assertThat(r.fdCount()).isEqualTo(3);
                assertThat(r.fds().get(0).stat().kind()).isEqualTo(FdStat.Kind.REGULAR);
                assertThat(r.fds().get(1).stat().kind()).isEqualTo(FdStat.Kind.ANONYMOUS);
                try (Memfd theirs = Memfd.adopt(r.fds().get(0), 0, 4096, MappingRule.SEALED_MEMFD);
                     EventFd theirKick = EventFd.adopt(r.fds().get(1)); EventFd theirCall = EventFd.adopt(r.fds().get(2))) {
                    assertThat(theirs.segment().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(42);
                    theirs.segment().set(ValueLayout.JAVA_LONG, 8, 43);
                    theirKick.signal();
                    theirCall.signal();
                    theirCall.signal();
                }
            }
            assertThat(mem.segment().get(ValueLayout.JAVA_LONG, 8)).isEqualTo(43);
            assertThat(kick.drain()).isEqualTo(1);
            assertThat(call.drain()).isEqualTo(2);
        }
    }

    @Test
    void aMessageWithoutFdsCarriesNone() {
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            pair.first().sendAll(new byte[] {1, 2});
            byte[] buf = new byte[8];
            try (Received r = pair.second().recv(buf, 0, buf.length, 4)) {
                assertThat(r.length()).isEqualTo(2);
                assertThat(r.fdCount()).isZero();
                assertThat(r.fdsTruncated()).isFalse();
            }
        }
    }

    @Test
    void moreFdsThanAllowedIsFlaggedAndNoneLeak() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd a = EventFd.create(); EventFd b = EventFd.create();
                EventFd c = EventFd.create()) {
            int before = openFds();
            pair.first().sendAll(new byte[] {9}, a.fd(), b.fd(), c.fd());
            byte[] buf = new byte[8];
            try (Received r = pair.second().recv(buf, 0, buf.length, 2)) {
                assertThat(r.length()).as("the bytes still arrive, for framing").isEqualTo(1);
                assertThat(r.fdsTruncated()).isTrue();
                assertThat(r.fdCount()).isZero();
            }
            pair.first().sendAll(new byte[] {9}, a.fd());
            try (Received r = pair.second().recv(buf, 0, buf.length, 0)) {
                assertThat(r.fdsTruncated()).as("fds where none are allowed").isTrue();
            }
            assertThat(openFds()).isEqualTo(before);
        }
    }

    @Test
    void aRejectedMessageClosesItsFdsAndATakenFdSurvives() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd a = EventFd.create(); UnixConnection.Pair other = UnixConnection.pair()) {
            int before = openFds();
            pair.first().sendAll(new byte[] {1}, other.first().fd(), a.fd());
            byte[] buf = new byte[8];
            EventFd kept;
            try (Received r = pair.second().recv(buf, 0, buf.length, 2)) {
                assertThat(r.fds().get(0).stat().kind()).isEqualTo(FdStat.Kind.SOCKET);
                assertThatThrownBy(() -> Memfd.adopt(r.fds().get(0), 0, 4096, MappingRule.SEALED_MEMFD)).as("a socket is not memory")
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("SOCKET");
                assertThatThrownBy(() -> EventFd.adopt(r.fds().get(0))).isInstanceOf(IllegalArgumentException.class);
                kept = EventFd.adopt(r.fds().get(1));
                assertThat(openFds()).isEqualTo(before + 2);
            }
            assertThat(openFds()).as("the refused socket fd was closed").isEqualTo(before + 1);
            kept.signal();
            assertThat(a.drain()).isEqualTo(1);
            kept.close();
            assertThat(openFds()).isEqualTo(before);
        }
    }

    @Test
    void aMessageGatheringFdsOverManyReceivesIsCutAtItsLimitAndHoldsNone() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd a = EventFd.create(); EventFd sentinel = EventFd.create()) {
            int before = openFds();
            // One byte and four fds per sendmsg, 64 times: a hostile peer's way to make one message carry 256 fds.
            for (int i = 0; i < 64; i++) pair.first().sendAll(new byte[] {(byte) i}, a.fd(), a.fd(), a.fd(), a.fd());
            pair.first().sendAll(new byte[] {99});
            byte[] buf = new byte[65];
            try (OwnedFds fds = OwnedFds.upTo(8)) {
                assertThat(pair.second().recvFully(buf, 0, 65, fds)).as("every byte still arrives, for framing").isEqualTo(65);
                assertThat(fds.overLimit()).isTrue();
                assertThat(fds.count()).isZero();
                assertThat(openFds()).as("nothing beyond the limit was ever held").isEqualTo(before);
            }
            assertThat(buf[64]).isEqualTo((byte) 99);
            sentinel.signal();
            assertThat(sentinel.drain()).as("no unrelated fd was closed").isEqualTo(1);
        }
    }

    @Test
    void aMessageWithinItsLimitKeepsItsFdsAcrossReceives() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            pair.first().sendAll(new byte[] {1}, a.fd());
            pair.first().sendAll(new byte[] {2, 3}, b.fd());
            byte[] buf = new byte[3];
            try (OwnedFds fds = OwnedFds.upTo(2)) {
                assertThat(pair.second().recvFully(buf, 0, 3, fds)).isEqualTo(3);
                assertThat(fds.overLimit()).isFalse();
                assertThat(fds.count()).isEqualTo(2);
                try (EventFd theirB = EventFd.adopt(fds.get(1))) {
                    theirB.signal();
                }
            }
            assertThat(b.drain()).isEqualTo(1);
        }
    }

    @Test
    void sendingManyFdsAndMoreBytesThanOneChunk() {
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            EventFd[] bells = new EventFd[UnixConnection.MAX_FDS];
            int[] fds = new int[bells.length];
            for (int i = 0; i < bells.length; i++) fds[i] = (bells[i] = EventFd.create()).fd();
            byte[] big = new byte[UnixConnection.CHUNK + 1000];
            big[big.length - 1] = 7;
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> pair.first().sendAll(big, fds));
            byte[] buf = new byte[big.length];
            int got = 0;
            int fdsGot = 0;
            while (got < big.length) {
                try (Received r = pair.second().recv(buf, got, buf.length - got, UnixConnection.MAX_FDS)) {
                    got += r.length();
                    fdsGot += r.fdCount();
                }
            }
            sender.join();
            assertThat(fdsGot).isEqualTo(UnixConnection.MAX_FDS);
            assertThat(buf[big.length - 1]).isEqualTo((byte) 7);
            for (EventFd b : bells) b.close();
        }
    }

    @Test
    void socketFileIsPrivateAndSocketpairPeerIsUs() throws Exception {
        Path path = dir.resolve("bus.sock");
        try (UnixListener listener = UnixListener.bind(path, 4); UnixConnection.Pair pair = UnixConnection.pair()) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(path))).isEqualTo("rw-------");
            assertThat(FdStat.ofPath(path).kind()).isEqualTo(FdStat.Kind.SOCKET);
            assertThat(pair.first().peerCredentials()).isEqualTo(PeerCredentials.ofThisProcess());
            assertThatThrownBy(() -> UnixListener.bind(path, 4)).as("an existing path is not taken over")
                    .isInstanceOf(Errno.SysException.class).hasMessageContaining("bind(");
        }
        assertThat(Files.exists(path)).as("close removes the socket file").isFalse();
    }

    @Test
    void closeWakesABlockedReceiveAndABlockedAccept() throws Exception {
        try (UnixListener listener = UnixListener.bind(dir.resolve("a.sock"), 1); UnixConnection.Pair pair = UnixConnection.pair()) {
            CompletableFuture<UnixConnection> accepted = CompletableFuture.supplyAsync(listener::accept, r -> Thread.ofPlatform().start(r));
            CompletableFuture<Received> received = CompletableFuture.supplyAsync(
                    () -> pair.second().recv(new byte[8], 0, 8, 0), r -> Thread.ofPlatform().start(r));
            Thread.sleep(50); // let both block; the assertions hold even if they have not yet
            listener.close();
            pair.second().close();
            assertThat(accepted.get()).isNull();
            assertThat(received.get().endOfStream()).isTrue();
            assertThat(pair.second().recv(new byte[8], 0, 8, 0).endOfStream()).as("recv after close").isTrue();
            assertThatThrownBy(() -> pair.second().sendAll(new byte[1])).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void nonBlockingSocketsReportWouldBlockAndWorkWithEpoll() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); Epoll epoll = Epoll.create(2)) {
            pair.second().setNonBlocking(true);
            byte[] buf = new byte[8];
            assertThat(pair.second().recv(buf, 0, 8, 0).wouldBlock()).isTrue();
            epoll.add(pair.second(), Epoll.IN | Epoll.RDHUP, 5);
            assertThat(epoll.wait(0)).isZero();
            pair.first().sendAll(new byte[] {1});
            assertThat(epoll.wait(1000)).isEqualTo(1);
            assertThat(epoll.token(0)).isEqualTo(5);
            assertThat(pair.second().recv(buf, 0, 8, 0).length()).isEqualTo(1);
            pair.first().shutdownOutput();
            assertThat(epoll.wait(1000)).isEqualTo(1);
            assertThat(epoll.events(0) & Epoll.RDHUP).isNotZero();
            assertThat(pair.second().recv(buf, 0, 8, 0).endOfStream()).isTrue();
        }
    }

    @Test
    void aChildJvmConnectsReceivesMemoryAndADoorbellAndRingsIt() throws Exception {
        Path path = dir.resolve("c.sock");
        try (UnixListener listener = UnixListener.bind(path, 1); Memfd mem = Memfd.create("child", 4096);
                EventFd done = EventFd.create(); DoorbellWait wait = new DoorbellWait();
                ChildJvm child = ChildJvm.start(Client.class, path.toString(), "ring")) {
            wait.add(done);
            try (UnixConnection conn = listener.accept()) {
                PeerCredentials peer = conn.peerCredentials();
                assertThat(peer.pid()).isEqualTo(child.pid());
                assertThat(peer.uid()).isEqualTo(PeerCredentials.ofThisProcess().uid());

                mem.segment().set(ValueLayout.JAVA_LONG, 0, 1000);
                conn.sendAll(new byte[] {'M'}, mem.fd(), done.fd());
                assertThat(wait.await(() -> false, TimeUnit.SECONDS.toNanos(30))).as(child::output)
                        .isEqualTo(DoorbellWait.Outcome.DOORBELL);
                assertThat(mem.segment().get(ValueLayout.JAVA_LONG, 8)).isEqualTo(1001);
                assertThat(child.waitFor(30, TimeUnit.SECONDS)).as(child::output).isZero();
                assertThat(conn.recv(new byte[8], 0, 8, 0).endOfStream()).as("the exited child's end reads EOF").isTrue();
            }
        }
    }

    @Test
    void aKilledPeerGivesEndOfStreamNotExceptions() throws Exception {
        Path path = dir.resolve("k.sock");
        try (UnixListener listener = UnixListener.bind(path, 1); ChildJvm child = ChildJvm.start(Client.class, path.toString(), "hang");
                UnixConnection conn = listener.accept()) {
            byte[] buf = new byte[8];
            try (Received hello = conn.recv(buf, 0, 8, 0)) {
                assertThat(hello.length()).as(child::output).isEqualTo(1);
            }
            conn.sendAll(new byte[] {'x'}); // unread by the child when it dies
            child.kill();
            for (int i = 0; i < 3; i++) assertThat(conn.recv(buf, 0, 8, 0).endOfStream()).isTrue();
            assertThatThrownBy(() -> conn.sendAll(new byte[] {1}))
                    .isInstanceOfSatisfying(Errno.SysException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPIPE));
        }
    }

    /** Child: connects; "ring" receives a memfd and an eventfd, bumps a word, rings; "hang" says hello and waits to be killed. */
    public static final class Client {
        public static void main(String[] args) throws Exception {
            try (UnixConnection conn = UnixConnection.connect(Path.of(args[0]))) {
                if (args[1].equals("hang")) {
                    conn.sendAll(new byte[] {'h'});
                    Thread.sleep(Long.MAX_VALUE);
                }
                byte[] buf = new byte[8];
                try (Received r = conn.recv(buf, 0, buf.length, 2)) {
                    if (r.fdCount() != 2) throw new AssertionError("expected 2 fds: " + r);
                    try (Memfd mem = Memfd.adopt(r.fds().get(0), 0, 4096, MappingRule.SEALED_MEMFD); EventFd done = EventFd.adopt(r.fds().get(1))) {
                        mem.segment().set(ValueLayout.JAVA_LONG, 8, mem.segment().get(ValueLayout.JAVA_LONG, 0) + 1);
                        done.signal();
                    }
                }
            }
        }
    }

    private static int openFds() {
        String[] names = Path.of("/proc/self/fd").toFile().list();
        return names == null ? -1 : names.length;
    }
}
