package dev.jvbus.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.state.RingKind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The one rule for a queue size, asked by the device, the vhost-user connector and restore alike. */
class QueueSpecTest {
    private final QueueSpec rx = new QueueSpec("rx", RingKind.SPLIT, 256);

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4, 64, 128, 256})
    void aPowerOfTwoUpToTheMaximumIsAccepted(int size) {
        assertThat(rx.accepts(size)).isTrue();
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -1, -256, Integer.MIN_VALUE, 3, 100, 255, 257, 512, 32768, Integer.MAX_VALUE})
    void zeroNegativeNotAPowerOfTwoOrAboveTheMaximumIsRefused(int size) {
        assertThat(rx.accepts(size)).isFalse();
    }

    @Test
    void theRuleSaysWhatItAsksForTheRefusalMessage() {
        assertThat(rx.sizeRule()).isEqualTo("a power of two in 1..256");
        assertThat(QueueSpec.optional("evq", RingKind.IOQ, 2048).sizeRule()).isEqualTo("a power of two in 1..2048");
    }

    @Test
    void aModelCannotDeclareAMaximumTheRuleWouldRefuse() {
        assertThat(new QueueSpec("big", RingKind.SPLIT, QueueSpec.SPLIT_MAX).accepts(QueueSpec.SPLIT_MAX)).isTrue();
        assertThatThrownBy(() -> new QueueSpec("odd", RingKind.SPLIT, 100))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("queue 'odd' max size must be a power of two in 1..32768: 100");
        assertThatThrownBy(() -> new QueueSpec("huge", RingKind.IOQ, 65536)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new QueueSpec("none", RingKind.IOQ, 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
