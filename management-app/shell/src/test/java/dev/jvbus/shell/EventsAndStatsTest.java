package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class EventsAndStatsTest extends AdminShellTest {

    @Test
    void eventsFollowsTheStreamAndPrintsEachEventAsALine() throws Exception {
        CompletableFuture<String> events = CompletableFuture.supplyAsync(() -> run("events --limit 1"));
        // The command subscribes in its own time: change the bus until it has seen a change.
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        for (int i = 0; !events.isDone() && System.nanoTime() < deadline; i++) {
            bus.post("/api/v1/containers", new ContainerCommands.Named("shell-ev" + i));
            try {
                events.get(200, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException stillWaiting) {
                // next change
            }
        }
        assertThat(events.get(1, TimeUnit.SECONDS)).startsWith("following events on " + app().url())
                .containsPattern("(?m)^\\d{4}-\\d\\d-\\d\\dT\\S+\\s+container-created\\s+/api/v1/containers/shell-ev\\d+");
    }

    @Test
    void eventsAsJsonGiveOneDocumentPerLineAndAViewerMayFollowThem() throws Exception {
        CompletableFuture<String> events = CompletableFuture.supplyAsync(() -> run("events --limit 1 --json"));
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        for (int i = 0; !events.isDone() && System.nanoTime() < deadline; i++) {
            bus.post("/api/v1/containers", new ContainerCommands.Named("shell-evj" + i));
            try {
                events.get(200, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException stillWaiting) {
                // next change
            }
        }
        JsonNode e = BusClient.JSON.readTree(events.get(1, TimeUnit.SECONDS).lines().findFirst().orElseThrow());
        assertThat(e.path("kind").asString()).isEqualTo("container-created");
        assertThat(refusal("events --limit x")).isEqualTo("'x' is not a valid Integer");
    }

    @Test
    void statsShowsARateRowForEveryQueueOfTheContainer() {
        String stats = run("stats --container default --interval 0.1 --count 2");
        assertThat(stats).contains("container default", "BUFFERS/S", "MBIT/S")
                .containsPattern("(?m)^2\\s+virtio-net\\s+0:rx0\\s+(yes|no)\\s+\\d+\\.\\d")
                .containsPattern("(?m)^2\\s+virtio-net\\s+1:tx0\\s");
        assertThat(stats.split("BUFFERS/S", -1)).as("refreshed twice").hasSize(3);
        assertThat(run("stats --container default --devid 1 --interval 0.1 --count 1")).containsPattern("(?m)^1\\s+venet\\s+0:").doesNotContain("virtio-net");
    }

    @Test
    void statsRefusesABadIntervalAndAContainerThatIsNotThere() {
        assertThat(refusal("stats --container default --interval 0")).isEqualTo("--interval is 0.05 to 3600 seconds");
        assertThat(refusal("stats --container nope --count 1")).contains("(no-such-container, HTTP 404)");
    }
}
