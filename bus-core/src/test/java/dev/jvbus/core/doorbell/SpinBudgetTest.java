package dev.jvbus.core.doorbell;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The policy alone, fed the waits a ring produces (how long each took, whether the spin caught it). */
class SpinBudgetTest {
    private static final long MAX = TimeUnit.MICROSECONDS.toNanos(50);
    private static final long LONG_WAIT = TimeUnit.MICROSECONDS.toNanos(400);   // a TCG guest's super-frame interval

    @Test
    void aRingWhoseWorkIsThereAgainAtOnceEarnsASpinThatGrowsToTheMaxWhileWorkTurnsUpJustAfterIt() {
        SpinBudget b = SpinBudget.adaptive(MAX);
        assertThat(b.nanos()).as("starts without spinning").isZero();
        b.afterWait(500, true);            // budget 0, and the arm's re-check found work: a busy ring
        assertThat(b.nanos()).isEqualTo(SpinBudget.GROW_START_NANOS);
        int waits = 0;
        while (b.nanos() < MAX && waits < 100) {
            long before = b.nanos();
            b.afterWait(b.nanos() + 5_000, false);   // slept, woken 5 us after the spin gave up: a longer spin would have caught it
            assertThat(b.nanos()).isGreaterThan(before);
            waits++;
        }
        assertThat(b.nanos()).isEqualTo(MAX);
        assertThat(waits).as("doubling: 10, 20, 40, 50 us").isEqualTo(3);
        b.afterWait(3_000, true);
        assertThat(b.nanos()).as("caught by a spin: enough, kept").isEqualTo(MAX);
    }

    @Test
    void aRingThatNeverHasWorkWhenTheSpinEndsShrinksTheBudgetToZeroAndKeepsItThere() {
        SpinBudget b = SpinBudget.adaptive(MAX);
        for (int i = 0; i < 10; i++) b.afterWait(1_000, false);
        assertThat(b.nanos()).isEqualTo(MAX);
        int waits = 0;
        while (b.nanos() > 0) {
            b.afterWait(LONG_WAIT, false);
            waits++;
        }
        assertThat(waits).as("halves, then drops to 0 below the grow start").isEqualTo(3);
        for (int i = 0; i < 100; i++) b.afterWait(LONG_WAIT, false);
        assertThat(b.nanos()).isZero();
        assertThat(b.shrinks()).isEqualTo(3);
    }

    @Test
    void aFixedBudgetNeverChanges() {
        SpinBudget b = SpinBudget.fixed(MAX);
        b.afterWait(LONG_WAIT, false);
        b.afterWait(1, true);
        assertThat(b.nanos()).isEqualTo(MAX);
        assertThat(SpinBudget.fixed(0).nanos()).isZero();
    }
}
