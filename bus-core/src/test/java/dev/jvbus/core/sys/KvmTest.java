package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The KVM bindings on their own, with a few hand-assembled instructions at CPL3 in 64-bit long mode
 * (the connector's guest program and layout live in connectors/kvm). Skipped, with the reason,
 * where /dev/kvm is missing or refused.
 */
class KvmTest {
    static final long MEMORY = 2L << 20, CODE = 0x10000, STACK = 0x100000;
    static final int PORT = 0x510, DOORBELL = 0x511;
    static final int CODE_SEL = 0x1B, DATA_SEL = 0x23;

    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    /** One vCPU over one memfd, a GDT and identity-mapped 2 MiB pages (U bit everywhere), {@code code} at CODE. */
    record Machine(KvmVm vm, Memfd memory, KvmVcpu vcpu) implements AutoCloseable {
        static Machine with(byte[] code) {
            try (Kvm kvm = Kvm.open()) {
                KvmVm vm = kvm.createVm();
                Memfd memory = Memfd.create("kvm-test", MEMORY);
                MemorySegment m = memory.segment();
                m.set(ValueLayout.JAVA_LONG, 0x1000 + 3 * 8, 0x00AFFB000000FFFFL);   // user code, 64-bit
                m.set(ValueLayout.JAVA_LONG, 0x1000 + 4 * 8, 0x00CFF3000000FFFFL);   // user data
                m.set(ValueLayout.JAVA_LONG, 0x2000, 0x3000 | 7);
                m.set(ValueLayout.JAVA_LONG, 0x3000, 0x4000 | 7);
                m.set(ValueLayout.JAVA_LONG, 0x4000, 0x87);
                MemorySegment.copy(code, 0, m, ValueLayout.JAVA_BYTE, CODE, code.length);
                vm.mapMemory(0, 0, m);
                KvmVcpu vcpu = vm.createVcpu(0);
                vcpu.enterUserMode(new KvmVcpu.UserEntry(0x2000, 0x1000, 5 * 8 - 1, CODE_SEL, DATA_SEL, CODE, STACK, 7, 0));
                return new Machine(vm, memory, vcpu);
            }
        }

        @Override
        public void close() {
            vcpu.close();
            vm.close();
            memory.close();
        }
    }

    static byte[] bytes(int... b) {
        byte[] out = new byte[b.length];
        for (int i = 0; i < b.length; i++) out[i] = (byte) b[i];
        return out;
    }

    // mov eax, 42 ; mov dx, 0x510 ; out dx, eax ; mov edi, eax ; out dx, eax ; jmp $
    static final byte[] TWO_PORT_WRITES = bytes(0xB8, 42, 0, 0, 0, 0x66, 0xBA, 0x10, 0x05, 0xEF, 0x89, 0xC7, 0xEF, 0xEB, 0xFE);

    @Test
    void aUserModeGuestExitsOnAPortWriteAndSeesTheRegisterTheVmmSet() {
        try (Machine vm = Machine.with(TWO_PORT_WRITES)) {
            assertThat(vm.vcpu().run()).isEqualTo(KvmVcpu.EXIT_IO);
            assertThat(vm.vcpu().ioPort()).isEqualTo(PORT);
            assertThat(vm.vcpu().ioDirection()).isEqualTo(KvmVcpu.IO_OUT);
            assertThat(vm.vcpu().ioSize()).isEqualTo(4);
            assertThat(vm.vcpu().ioData()).isEqualTo(42);
            assertThat(vm.vcpu().register(KvmVcpu.Register.RDI)).as("the entry argument").isEqualTo(7);

            vm.vcpu().setRegister(KvmVcpu.Register.RAX, 0x1234);
            assertThat(vm.vcpu().run()).isEqualTo(KvmVcpu.EXIT_IO);
            assertThat(vm.vcpu().ioData()).as("the guest wrote back what the VMM put in rax").isEqualTo(0x1234);
            assertThat(vm.vcpu().register(KvmVcpu.Register.RDI)).isEqualTo(0x1234);
        }
    }

    @Test
    void anExitRequestBringsBackAVcpuThatNeverExitsByItself() throws Exception {
        try (Machine vm = Machine.with(bytes(0xEB, 0xFE))) {          // jmp $: runs natively, never exits
            CompletableFuture<Integer> exit = new CompletableFuture<>();
            Thread runner = Thread.ofPlatform().start(() -> {
                try {
                    exit.complete(vm.vcpu().run());
                } catch (RuntimeException e) {
                    exit.completeExceptionally(e);
                }
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!exit.isDone() && System.nanoTime() < deadline) {
                vm.vcpu().requestExit();
                runner.join(Duration.ofMillis(20));
            }
            assertThat(exit.get(1, TimeUnit.SECONDS)).isEqualTo(KvmVcpu.EXIT_INTR);
            assertThat(vm.vcpu().register(KvmVcpu.Register.RIP)).isEqualTo(CODE);
            assertThat(vm.vcpu().run()).as("immediate_exit stays set: no further entry").isEqualTo(KvmVcpu.EXIT_INTR);
        }
    }

    @Test
    void aPortDoorbellSignalsItsEventfdInTheKernelWithoutAnExit() {
        // mov eax, 9 ; mov dx, 0x511 ; out dx, eax (doorbell, matched) ; mov eax, 8 ; out dx, eax (unmatched: exits) ; jmp $
        byte[] code = bytes(0xB8, 9, 0, 0, 0, 0x66, 0xBA, 0x11, 0x05, 0xEF, 0xB8, 8, 0, 0, 0, 0xEF, 0xEB, 0xFE);
        try (Machine vm = Machine.with(code); EventFd kick = EventFd.create()) {
            vm.vm().bindPortDoorbell(DOORBELL, 4, OptionalLong.of(9), kick);
            assertThat(vm.vcpu().run()).isEqualTo(KvmVcpu.EXIT_IO);
            assertThat(vm.vcpu().ioData()).as("the first exit is the unmatched write").isEqualTo(8);
            assertThat(kick.drain()).as("the matched write landed on the eventfd").isEqualTo(1);
            vm.vm().unbindPortDoorbell(DOORBELL, 4, OptionalLong.of(9), kick);
        }
    }
}
