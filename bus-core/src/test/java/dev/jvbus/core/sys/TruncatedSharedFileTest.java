package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * The risk {@link MappingRule#SHARED_FILE} leaves (vhost-user front-ends' files are not sealed): a
 * peer truncates the file under the mapping. The JVM turns the SIGBUS of the next access into an
 * InternalError on the accessing thread, which a queue worker reports as a fault of its device; the
 * process does not die.
 */
class TruncatedSharedFileTest {

    @Test
    void anAccessPastAPeersTruncationIsAnInternalErrorNotACrash() {
        try (OwnedFd file = HostileFds.memfd("truncated", 2 * 4096, 0); OwnedFd peersCopy = OwnedFd.duplicate(file.number());
             Memfd mapped = Memfd.adopt(file, 0, 2 * 4096, MappingRule.SHARED_FILE)) {
            mapped.segment().set(ValueLayout.JAVA_LONG, 4096, 1L);
            assertThat(HostileFds.truncate(peersCopy.number(), 4096)).isZero();
            assertThat(mapped.segment().get(ValueLayout.JAVA_LONG, 0)).as("the page still in the file").isZero();
            assertThatThrownBy(() -> mapped.segment().get(ValueLayout.JAVA_LONG, 4096)).isInstanceOf(InternalError.class);
            assertThatThrownBy(() -> mapped.segment().set(ValueLayout.JAVA_LONG, 4096, 2L)).isInstanceOf(InternalError.class);
        }
    }
}
