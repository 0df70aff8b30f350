package dev.jvbus.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** bench-guest's per-thread accounting, read from this JVM's own /proc entries. */
class ThreadCpuTest {
    @Test
    void aThreadThatBurnsCpuAndSleepsShowsItsRunTimeAndItsWakeUpsUnderItsName() throws Exception {
        ThreadCpu cpu = ThreadCpu.start(ProcessHandle.current().pid());
        Thread t = Thread.ofPlatform().name("burner-test").start(() -> {
            long x = 0;
            for (int i = 0; i < 20; i++) {
                long until = System.nanoTime() + 2_000_000;
                while (System.nanoTime() < until) x += i;   // CPU, then a sleep: one voluntary switch each
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
            if (x == 42) System.out.print("");
        });
        // Read while it still exists: a thread that ended has left /proc/<pid>/task. (The kernel keeps 15
        // characters of a name: a short one is found whole.)
        List<ThreadCpu.Use> uses = null;
        ThreadCpu.Use burner = null;
        for (int i = 0; i < 10_000 && t.isAlive(); i++) {
            uses = cpu.end(null);
            burner = uses.stream().filter(u -> u.name().equals("burner-test")).findFirst().orElse(null);
            if (burner != null && burner.voluntary() >= 10) break;
            Thread.sleep(1);
        }
        t.join();
        assertThat(burner).as("the burner, by its name").isNotNull();
        assertThat(burner.runNanos()).isPositive();
        assertThat(burner.voluntary()).as("it slept, so it was woken").isGreaterThanOrEqualTo(10);
        assertThat(ThreadCpu.describe("JVM", List.of(burner), burner.runNanos(), 1_000_000, 0)).contains("burner-test", "100.0%");
    }

    @Test
    void theSchedFileIsReadForRunTimeSwitchesAndMigrations() {
        ThreadCpu.Sample s = ThreadCpu.parseSched("CPU 0/TCG", """
                CPU 0/TCG (1234, #threads: 5)
                -------------------------------------------------------------------
                se.exec_start                                :      61957096.166088
                se.sum_exec_runtime                          :          1500.250000
                se.nr_migrations                             :                    7
                nr_switches                                  :                  120
                nr_voluntary_switches                        :                  100
                nr_involuntary_switches                      :                   20
                """);
        assertThat(s).isEqualTo(new ThreadCpu.Sample("CPU 0/TCG", 1_500_250_000L, 100, 20, 7));
    }
}
