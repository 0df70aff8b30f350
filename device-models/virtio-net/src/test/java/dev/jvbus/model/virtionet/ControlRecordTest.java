package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The driver's control record (a bus restart): what a restarted bus reads back from the bytes alone, a write the
 * bus died inside, and every hostile value refused by name.
 */
class ControlRecordTest {
    static final long G = 0x10_0000L, AT = G + 0x1000;
    static final long MAC = MacAddress.parse("02:00:00:00:0c:01");
    static final VirtioNetState SET = new VirtioNetState(true, false, true, false, false, false, true,
            List.of("02:00:00:00:0c:02"), List.of("01:00:5e:00:00:09"), false, true, 0L, 3);

    private final Memfd mem = Memfd.create("control-record", 1 << 16);
    private final GuestMemory memory = GuestMemory.of(new MemoryRegion(G, 1 << 16, mem.segment()));

    @AfterEach
    void close() {
        mem.close();
    }

    @Test
    void whatWasWrittenIsReadBackByTheNextBusAndANeverWrittenRecordHoldsNothing() throws Exception {
        assertThat(ControlRecord.at(memory, AT).read()).isEmpty();
        ControlRecord r = ControlRecord.at(memory, AT);
        r.write(VirtioNetState.DEFAULTS, MAC, true);
        r.write(SET, MAC + 1, false);
        assertThat(ControlRecord.at(memory, AT).read()).hasValue(new ControlRecord.Saved(SET, MAC + 1, false));
        r.write(SET, MAC + 1, true);
        assertThat(ControlRecord.at(memory, AT).read()).as("an announce request pending").hasValue(new ControlRecord.Saved(SET, MAC + 1, true));
    }

    @Test
    void aWriteTheBusDiedInsideLeavesTheLastWholeOne() throws Exception {
        ControlRecord r = ControlRecord.at(memory, AT);
        r.write(SET, MAC, false);
        // The next write fills the other slot and dies before publishing its generation: garbage in that slot.
        long generation = mem.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, AT - G);
        long other = AT - G + 8 + ((generation + 1) & 1) * ControlRecord.SLOT_BYTES;
        mem.segment().asSlice(other, ControlRecord.SLOT_BYTES).fill((byte) 0x5a);
        assertThat(ControlRecord.at(memory, AT).read()).hasValue(new ControlRecord.Saved(SET, MAC, false));
    }

    @Test
    void hostileValuesAreRefusedByName() throws Exception {
        assertRefused(s -> s.set(ValueLayout.JAVA_BYTE, 0, (byte) 9), "version 9");
        assertRefused(s -> { s.set(ValueLayout.JAVA_BYTE, 1, (byte) 60); s.set(ValueLayout.JAVA_BYTE, 2, (byte) 10); }, "60 + 10 filter addresses");
        assertRefused(s -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 4, (short) 0x8000), "unknown bits");
        assertRefused(s -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 4, (short) 0x0400), "unknown bits");
        assertRefused(s -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 6, (short) 0), "queuePairs");
        assertRefused(s -> s.set(ValueLayout.JAVA_BYTE, 16, (byte) 0x01), "is not a unicast address");
        assertRefused(s -> s.set(ValueLayout.JAVA_BYTE, 24, (byte) 0x01), "is a group address");
        assertRefused(s -> s.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 1L << 40), "no guest offload");
        assertThatThrownBy(() -> ControlRecord.at(memory, AT + 4)).isInstanceOf(GuestMemoryException.class).hasMessageContaining("aligned");
        assertThatThrownBy(() -> ControlRecord.at(memory, G + (1 << 16) - 8)).isInstanceOf(GuestMemoryException.class);
    }

    private void assertRefused(java.util.function.Consumer<MemorySegment> spoil, String why) throws Exception {
        ControlRecord r = ControlRecord.at(memory, AT);
        r.write(SET, MAC, false);
        long generation = mem.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, AT - G);
        spoil.accept(mem.segment().asSlice(AT - G + 8 + (generation & 1) * ControlRecord.SLOT_BYTES, ControlRecord.SLOT_BYTES));
        assertThatThrownBy(() -> ControlRecord.at(memory, AT).read()).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(why);
    }
}
