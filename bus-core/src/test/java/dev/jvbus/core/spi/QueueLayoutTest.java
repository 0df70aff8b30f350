package dev.jvbus.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.state.RingKind;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code queue-size}: the one rule that sizes one device's queues below its model's. */
class QueueLayoutTest {
    private final QueueLayout model = QueueLayout.of(new QueueSpec("rx", RingKind.SPLIT, 1024),
            new QueueSpec("tx", RingKind.SPLIT, 1024), QueueSpec.optional("ctrl", RingKind.SPLIT, 64));

    @Test
    void withoutTheParameterADeviceHasItsModelsLayout() {
        assertThat(model.sizedBy(Map.of("mtu", "1500"))).isSameAs(model);
    }

    @Test
    void theSizeHoldsEveryQueueToItAndASmallerQueueKeepsItsOwn() {
        QueueLayout sized = model.sizedBy(Map.of(QueueLayout.SIZE_PARAM, "256"));
        assertThat(sized.queues()).extracting(QueueSpec::maxSize).containsExactly(256, 256, 64);
        assertThat(sized.queues()).extracting(QueueSpec::required).containsExactly(true, true, false);
        assertThat(model.sizedBy(Map.of(QueueLayout.SIZE_PARAM, "32")).queues()).extracting(QueueSpec::maxSize).containsExactly(32, 32, 32);
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-8", "100", "2048", "65536", " ", "x", "1e3"})
    void aSizeOutsideTheRuleIsRefusedNamingTheParameterAndTheRange(String size) {
        assertThatThrownBy(() -> model.sizedBy(Map.of(QueueLayout.SIZE_PARAM, size)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("parameter 'queue-size' must be a power of two in 1..1024");
    }
}
