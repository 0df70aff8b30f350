package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.vhostuser.StreamGuest.MEM;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_BUFFERS;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.net.DropReason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Fault injection (issue 10): a front-end truncates its guest-memory file under the device (QEMU's and
 * DPDK's files are not sealed, MemoryTable). The next write into a page past the new end raises SIGBUS,
 * which the JVM turns into an InternalError on the writing thread. Here that thread is the sender's: device
 * B's tx worker, delivering B's frame through the switch into A's rx buffers. The fault is A's and only
 * A's: A needs a reset (its reason says its memory faulted), B goes on sending, its frames to A dropped and
 * counted, never reset itself.
 */
class TruncatedFrontEndMemoryTest extends TwoDeviceStream {
    private OwnedFd frontEndsFile;

    /** The front-end's file: an unsealed memfd it keeps its own fd of, mapped as guest A's memory too. */
    @Override
    Memfd guestAMemory() {
        frontEndsFile = HostileFds.memfd("front-end", MEM, 0);
        return Memfd.adopt(OwnedFd.duplicate(frontEndsFile.number()), 0, MEM, MappingRule.SHARED_FILE);
    }

    @AfterEach
    void closeFile() {
        if (frontEndsFile != null) frontEndsFile.close();
    }

    @Test
    void aFrontEndThatTruncatesItsMemoryFaultsItsOwnDeviceOnlyAndTheSenderGoesOn() throws Exception {
        guestB.sendLimit = Integer.MAX_VALUE;
        await(() -> guestA.received >= 500, "B's frames stream into A");
        guestA.stopAndJoin();                                  // the guest stops touching its memory
        long sentBefore = guestB.sent;
        assertThat(HostileFds.truncate(frontEndsFile.number(), RX_BUFFERS)).as("the front-end cuts its rx buffers off").isZero();
        long droppedBefore = dropsAt(a, DropReason.RING_FAULT) + dropsAt(a, DropReason.PORT_DOWN);

        // B's window follows the rx buffers A offered again: open it by 64 as if A had, so B sends at least 64 more frames
        // into A's cut-off buffers. The first frames fault on B's worker and are A's fault (copied as they land, or at
        // the end of B's run to A when their copies were put off: RxCopies); those and the rest are dropped at A's port
        // (as ring faults until A's run has stopped, then as port down: which is a matter of timing).
        guestA.returned += 64;
        await(() -> a.needsResetReason().isPresent(), "A needs a reset");
        assertThat(a.needsResetReason().get()).contains("memory faulted");
        await(() -> guestB.sent >= sentBefore + 64 && guestB.txq.outstanding() == 0, "B's 64 further frames complete");
        assertThat(dropsAt(a, DropReason.RING_FAULT)).as("the delivery that faulted, counted at A's port").isPositive();
        // Waited for, not read once: B's completions can be visible a moment before the last drop's count is
        // (a CI run read 1 of 64 here once on a loaded machine). A drop under another reason still fails, named.
        try {
            await(() -> dropsAt(a, DropReason.RING_FAULT) + dropsAt(a, DropReason.PORT_DOWN) - droppedBefore >= 64,
                    "B's frames dropped at A's port, counted");
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; every drop at A's port: " + dropsAt(a), e);
        }
        assertThat(b.needsResetReason()).as("the sender is not blamed for the receiver's memory").isEmpty();
        assertThat(b.status().isLive()).isTrue();
        assertThat(guestB.failure).isNull();
    }
}
