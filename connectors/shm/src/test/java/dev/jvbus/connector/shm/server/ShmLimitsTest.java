package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.SessionRefusal;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.testing.EchoModel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Each operator limit of the shm connector, hit by one client: that request or connection is
 * refused with a message naming the limit, and a well-behaved client on the same socket keeps working.
 */
class ShmLimitsTest {
    private static final DevId DEV1 = new DevId(1), DEV2 = new DevId(2);

    /** A greeted client holding DEV2 whose echo still answers: "every other tenant keeps working". */
    private static RawClient wellBehaved(ShmFixture fx, String container) throws Exception {
        RawClient c = RawClient.greeted(fx.socket(container));
        assertThat(c.request(new Message.DevOpen(DEV2)).isOk()).isTrue();
        assertStillWorks(c);
        return c;
    }

    private static void assertStillWorks(RawClient c) throws Exception {
        Reply echo = c.request(new Message.DevCall(DEV2, BusCall.MODEL_BASE + EchoModel.CALL_ECHO, "ok".getBytes(StandardCharsets.UTF_8)));
        assertThat(echo.isOk()).as(echo.toString()).isTrue();
        assertThat(new String(echo.payload(), StandardCharsets.UTF_8)).isEqualTo("ok");
    }

    @Test
    void aConnectionBeyondSessionsPerSocketIsRefusedNamingTheLimitAndTheOthersKeepWorking() throws Exception {
        try (ShmFixture fx = new ShmFixture(ShmLimits.DEFAULTS.withSessionsPerSocket(2)).with("few", 2);
             RawClient good = wellBehaved(fx, "few"); RawClient second = RawClient.greeted(fx.socket("few"))) {
            try (RawClient third = new RawClient(fx.socket("few"))) {
                Message m = third.next();
                assertThat(m).isInstanceOfSatisfying(Reply.class, r -> {
                    assertThat(r.error()).isEqualTo(ErrorCode.LIMIT);
                    assertThat(r.errorMessage()).contains("limit: ShmLimits.sessionsPerSocket = 2");
                });
                assertThat(third.closedByBus()).isTrue();
            }
            assertThat(fx.shm.socket("few").orElseThrow().refused(SessionRefusal.LIMIT)).as("counted for metrics, by reason").isEqualTo(1);
            assertThat(fx.shm.socket("few").orElseThrow().refused(SessionRefusal.NOT_ALLOWED)).isZero();
            assertStillWorks(good);
            second.close();
            ShmFixture.eventually("the second session ended", () -> fx.shm.socket("few").orElseThrow().sessionCount() == 1);
            try (BusClient again = BusClient.connect(fx.socket("few"), "again")) {
                assertThat(again.enumerate()).hasSize(2);
            }
            assertStillWorks(good);
        }
    }

    @Test
    void aClientThatDoesNotCompleteHelloInTimeIsDroppedNamingTheLimitAndAGreetedOneStays() throws Exception {
        try (ShmFixture fx = new ShmFixture(ShmLimits.DEFAULTS.withHelloTimeout(Duration.ofSeconds(2))).with("quick", 2);
             RawClient good = wellBehaved(fx, "quick"); RawClient silent = new RawClient(fx.socket("quick"))) {
            Message m = silent.next();   // blocks until the bus speaks: it does when the deadline passes
            assertThat(m).isInstanceOfSatisfying(Reply.class, r -> {
                assertThat(r.error()).isEqualTo(ErrorCode.LIMIT);
                assertThat(r.errorMessage()).contains("no HELLO within 2000 ms (limit: ShmLimits.helloTimeout)");
            });
            assertThat(silent.closedByBus()).isTrue();
            assertStillWorks(good);   // greeted before the deadline: never dropped
        }
    }

    @Test
    void regionsAndBytesPerSessionAreLimitedEvenForASparseMemfdThatClaimsFortyTebibytes() throws Exception {
        try (ShmFixture fx = new ShmFixture(ShmLimits.DEFAULTS.withRegionsPerSession(2).withBytesPerSession(64 * 1024)).with("mem", 2);
             RawClient good = wellBehaved(fx, "mem"); RawClient greedy = RawClient.greeted(fx.socket("mem"));
             Memfd mem = Memfd.create("regions", 64 * 1024);
             OwnedFd sparse = HostileFds.memfd("sparse", 40L << 40, HostileFds.SEAL_SHRINK | HostileFds.SEAL_SEAL)) {
            assertThat(greedy.request(new Message.DevOpen(DEV1)).isOk()).isTrue();

            Reply huge = greedy.request(new Message.DevShm(DEV1, 0, 40L << 40, 0), sparse.number());
            assertThat(huge.error()).as(huge.toString()).isEqualTo(ErrorCode.LIMIT);
            assertThat(huge.errorMessage()).contains("limit: ShmLimits.bytesPerSession");

            assertThat(greedy.request(new Message.DevShm(DEV1, 0x10000, 48 * 1024, 0), mem.fd()).isOk()).isTrue();
            Reply tooMany = greedy.request(new Message.DevShm(DEV1, 0x40000, 32 * 1024, 32 * 1024), mem.fd());
            assertThat(tooMany.error()).as(tooMany.toString()).isEqualTo(ErrorCode.LIMIT);
            assertThat(tooMany.errorMessage()).contains("past 65536 bytes (limit: ShmLimits.bytesPerSession; 49152 mapped now)");

            assertThat(greedy.request(new Message.DevShm(DEV1, 0x40000, 4096, 0), mem.fd()).isOk()).isTrue();
            Reply third = greedy.request(new Message.DevShm(DEV1, 0x50000, 4096, 0), mem.fd());
            assertThat(third.error()).as(third.toString()).isEqualTo(ErrorCode.LIMIT);
            assertThat(third.errorMessage()).contains("already has 2 regions mapped (limit: ShmLimits.regionsPerSession = 2)");

            // The limits are per session: the well-behaved client shares its own memory as usual.
            ContainerSocket socket = fx.shm.socket("mem").orElseThrow();
            long before = socket.mappedBytes();
            assertThat(good.request(new Message.DevShm(DEV2, 0x10000, 48 * 1024, 0), mem.fd()).isOk()).isTrue();
            assertThat(socket.mappedBytes()).as("what the sessions map, for metrics").isEqualTo(before + 48 * 1024);
            assertThat(greedy.request(new Message.DevClose(DEV1)).isOk()).isTrue();
            assertThat(socket.mappedBytes()).as("the greedy client's 48 + 4 KiB unmapped with its device").isEqualTo(before + 48 * 1024 - 52 * 1024);
            assertStillWorks(good);
        }
    }

    @Test
    void aSessionThreadThatCannotBeCreatedRefusesThatConnectionOnlyAndTheAcceptorGoesOn() throws Exception {
        ThreadFactory platform = Thread.ofPlatform().daemon().factory();
        AtomicInteger made = new AtomicInteger();
        ThreadFactory failsOnce = r -> {
            if (made.incrementAndGet() == 2)
                throw new OutOfMemoryError("unable to create native thread: possibly out of memory or process/resource limits reached");
            return platform.newThread(r);
        };
        try (ShmFixture fx = new ShmFixture(ShmLimits.DEFAULTS, failsOnce).with("threads", 2);
             RawClient good = wellBehaved(fx, "threads")) {
            try (RawClient unlucky = new RawClient(fx.socket("threads"))) {
                Message m = unlucky.next();
                assertThat(m).isInstanceOfSatisfying(Reply.class, r -> {
                    assertThat(r.error()).isEqualTo(ErrorCode.INTERNAL);
                    assertThat(r.errorMessage()).contains("cannot start a thread for this connection now").contains("unable to create native thread");
                });
                assertThat(unlucky.closedByBus()).isTrue();
            }
            try (BusClient next = BusClient.connect(fx.socket("threads"), "next")) {
                assertThat(next.enumerate()).as("the acceptor still accepts").hasSize(2);
            }
            assertStillWorks(good);
            ShmFixture.eventually("only the well-behaved session is left",
                    () -> fx.shm.socket("threads").orElseThrow().sessionCount() == 1);
        }
    }
}
