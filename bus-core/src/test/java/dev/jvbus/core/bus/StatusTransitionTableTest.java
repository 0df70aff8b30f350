package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FAILED;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.core.bus.DeviceStatus.NEEDS_RESET;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.StatusTransition.Apply;
import dev.jvbus.core.bus.StatusTransition.Refused;
import dev.jvbus.core.bus.StatusTransition.Reset;
import dev.jvbus.core.bus.StatusTransition.Rule;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every interesting (status, driver write) pair and what the device must do, from the pure
 * {@link DeviceStatus#next}: one row each, the expected outcome stated in full.
 */
class StatusTransitionTableTest {
    static final int AD = ACKNOWLEDGE | DRIVER;
    static final int ADF = AD | FEATURES_OK;
    static final int LIVE = ADF | DRIVER_OK;
    static final long NOT_OFFERED = 1L << 5;   // an acked bit outside the offer

    record Row(int from, int written, long ackedOutsideOffer, StatusTransition expected) {
        @Override public String toString() {
            return new DeviceStatus(from) + " <- " + new DeviceStatus(written)
                    + (ackedOutsideOffer != 0 ? " (acked features outside the offer)" : "") + " => " + expected;
        }
    }

    static Row row(int from, int written, StatusTransition expected) { return new Row(from, written, 0, expected); }

    static Row badFeatures(int from, int written, StatusTransition expected) { return new Row(from, written, NOT_OFFERED, expected); }

    static Apply to(int status) { return new Apply(status, false, false, false, Optional.empty()); }

    static Apply acceptTo(int status) { return new Apply(status, false, true, false, Optional.empty()); }

    static Apply startTo(int status, boolean accept) { return new Apply(status, false, accept, true, Optional.empty()); }

    static Apply stopTo(int status) { return new Apply(status, true, false, false, Optional.empty()); }

    static Apply stopTo(int status, Refused rest) { return new Apply(status, true, false, false, Optional.of(rest)); }

    static Refused refused(Rule rule, String reason) { return new Refused(rule, reason); }

    static final Refused CLEARED = refused(Rule.CLEARED_ONLY_BY_RESET, "status bits are cleared only by a reset (write 0)");
    static final Refused NEEDS_RESET_REFUSAL = refused(Rule.DEVICE_NEEDS_RESET, "device needs reset");
    static final Refused FEATURES_REFUSED = refused(Rule.FEATURES_NOT_OFFERED, "FEATURES_OK refused: acked features outside the offer 0x20");

    static Stream<Row> table() {
        return Stream.of(
                // reset (write 0) from anywhere
                row(0, 0, new Reset()),
                row(LIVE, 0, new Reset()),
                row(LIVE | FAILED, 0, new Reset()),
                row(LIVE | NEEDS_RESET, 0, new Reset()),
                // the spec's order, one bit at a time
                row(0, ACKNOWLEDGE, to(ACKNOWLEDGE)),
                row(ACKNOWLEDGE, AD, to(AD)),
                row(AD, ADF, acceptTo(ADF)),
                row(ADF, LIVE, startTo(LIVE, false)),
                // several bits in one write, taken in order
                row(0, LIVE, startTo(LIVE, true)),
                row(0, AD, to(AD)),
                // FEATURES_OK with acked features outside the offer: the earlier bits stand, FEATURES_OK stays clear
                badFeatures(AD, ADF, new Apply(AD, false, false, false, Optional.of(FEATURES_REFUSED))),
                badFeatures(0, LIVE, new Apply(AD, false, false, false, Optional.of(FEATURES_REFUSED))),
                badFeatures(ADF, LIVE, startTo(LIVE, false)),    // features were settled at FEATURES_OK
                // out of order
                row(0, DRIVER, refused(Rule.OUT_OF_ORDER, "DRIVER before ACKNOWLEDGE")),
                row(ACKNOWLEDGE, ACKNOWLEDGE | FEATURES_OK, refused(Rule.OUT_OF_ORDER, "FEATURES_OK before DRIVER")),
                row(AD, AD | DRIVER_OK, refused(Rule.OUT_OF_ORDER, "DRIVER_OK before FEATURES_OK")),
                row(0, ACKNOWLEDGE | DRIVER_OK, refused(Rule.OUT_OF_ORDER, "DRIVER_OK before FEATURES_OK")),
                // writing back what is set changes nothing
                row(ACKNOWLEDGE, ACKNOWLEDGE, to(ACKNOWLEDGE)),
                row(LIVE, LIVE, to(LIVE)),
                // clearing bits without a reset
                row(AD, ACKNOWLEDGE, CLEARED),
                row(AD, DRIVER, CLEARED),
                row(LIVE, ADF, CLEARED),
                row(LIVE | FAILED, LIVE, CLEARED),
                // unknown bits, and NEEDS_RESET set by the driver
                row(0, ACKNOWLEDGE | 0x10, refused(Rule.UNKNOWN_BITS, "unknown status bits 0x10")),
                row(LIVE, LIVE | 0x100, refused(Rule.UNKNOWN_BITS, "unknown status bits 0x100")),
                row(ACKNOWLEDGE, ACKNOWLEDGE | NEEDS_RESET,
                        refused(Rule.NEEDS_RESET_IS_THE_DEVICES, "NEEDS_RESET is set by the device, not the driver")),
                // FAILED: at any time, stops the data path; then only a reset helps
                row(0, FAILED, stopTo(FAILED)),
                row(AD, AD | FAILED, stopTo(AD | FAILED)),
                row(LIVE, LIVE | FAILED, stopTo(LIVE | FAILED)),
                row(LIVE | FAILED, LIVE | FAILED, to(LIVE | FAILED)),
                row(AD | FAILED, ADF | FAILED, refused(Rule.DRIVER_GAVE_UP, "the driver gave up (FAILED); reset first")),
                // FAILED beside new bits: FAILED stands, the rest is not taken (it used to be, starting a data path
                // for a driver that had given up)
                row(ADF, LIVE | FAILED, stopTo(ADF | FAILED, refused(Rule.DRIVER_GAVE_UP,
                        "the driver gave up (FAILED) in this write; DRIVER_OK beside it is not taken; reset first"))),
                row(0, ACKNOWLEDGE | FAILED, stopTo(FAILED, refused(Rule.DRIVER_GAVE_UP,
                        "the driver gave up (FAILED) in this write; ACKNOWLEDGE beside it is not taken; reset first"))),
                // NEEDS_RESET set by the device: writing it back or dropping it is harmless and changes nothing
                row(LIVE | NEEDS_RESET, LIVE | NEEDS_RESET, to(LIVE | NEEDS_RESET)),
                row(LIVE | NEEDS_RESET, LIVE, to(LIVE | NEEDS_RESET)),
                // ... new bits after it are refused, FAILED is taken, clearing is refused
                row(AD | NEEDS_RESET, ADF, NEEDS_RESET_REFUSAL),
                row(AD | NEEDS_RESET, ADF | NEEDS_RESET, NEEDS_RESET_REFUSAL),
                row(LIVE | NEEDS_RESET, LIVE | NEEDS_RESET | FAILED, stopTo(LIVE | NEEDS_RESET | FAILED)),
                row(AD | NEEDS_RESET, ADF | FAILED, stopTo(AD | NEEDS_RESET | FAILED, NEEDS_RESET_REFUSAL)),
                row(AD | NEEDS_RESET, ACKNOWLEDGE | NEEDS_RESET, CLEARED));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void eachWriteHasTheStatedOutcome(Row r) {
        assertThat(new DeviceStatus(r.from()).next(r.written(), r.ackedOutsideOffer())).isEqualTo(r.expected());
    }
}
