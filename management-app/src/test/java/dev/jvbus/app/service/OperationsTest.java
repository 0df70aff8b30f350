package dev.jvbus.app.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The operation registry on its own: states, steps and events, cancel, and its two limits. */
class OperationsTest {
    private final List<BusEvent> events = new CopyOnWriteArrayList<>();

    private Operations operations(int maxRunning, int maxKept) {
        return new Operations(e -> events.add((BusEvent) e), maxRunning, maxKept);
    }

    @Test
    void anOperationReportsItsStepsAndEndsWithItsResultAndEventsSayEachStep() throws Exception {
        Operations ops = operations(2, 4);
        OperationView started = ops.start("snapshot", "/api/v1/containers/c/devices/1", p -> {
            p.step("one");
            p.step("two");
            return "done";
        });
        OperationView end = ops.awaitEnd(started.id(), Duration.ofSeconds(30));
        assertThat(end.state()).isEqualTo(OperationView.State.SUCCEEDED);
        assertThat(end.result()).isEqualTo("done");
        assertThat(end.steps()).extracting(OperationView.Step::name).containsExactly("one", "two");
        assertThat(end.steps()).allSatisfy(s -> assertThat(s.finishedAt()).isNotNull());
        assertThat(ops.result(started.id())).isEqualTo("done");
        assertThat(events).extracting(BusEvent::kind)
                .containsExactly("operation-started", "operation-step", "operation-step", "operation-succeeded");
        assertThat(events).allSatisfy(e -> assertThat(e.subject()).isEqualTo("/api/v1/operations/" + started.id()));
    }

    @Test
    void aRefusalEndsTheOperationFailedWithItsProblem() throws Exception {
        Operations ops = operations(2, 4);
        String id = ops.start("restore", "/api/v1/containers/c", p -> {
            throw new OperationRefused(ProblemType.FEATURE_NOT_NEGOTIABLE, "no", java.util.Map.of("features", List.of("X")));
        }).id();
        OperationView end = ops.awaitEnd(id, Duration.ofSeconds(30));
        assertThat(end.state()).isEqualTo(OperationView.State.FAILED);
        assertThat(end.problem()).containsEntry("type", ProblemType.FEATURE_NOT_NEGOTIABLE.uri().toString())
                .containsEntry("status", 422).containsEntry("features", List.of("X"));
        assertThatThrownBy(() -> ops.result(id)).isInstanceOf(OperationRefused.class).hasMessageContaining("failed");
    }

    @Test
    void cancellingStopsTheWorkAtItsNextWaitAndTheOperationEndsCancelled() throws Exception {
        Operations ops = operations(2, 4);
        CountDownLatch waiting = new CountDownLatch(1);
        String id = ops.start("resume", "/x", p -> {
            p.step("await-driver");
            waiting.countDown();
            p.await(() -> false, Duration.ofMinutes(5));
            return "never";
        }).id();
        assertThat(waiting.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(ops.cancel(id).state()).isEqualTo(OperationView.State.RUNNING);   // asked; it stops at its next look
        OperationView end = ops.awaitEnd(id, Duration.ofSeconds(30));
        assertThat(end.state()).isEqualTo(OperationView.State.CANCELLED);
        assertThat(end.problem()).containsEntry("type", ProblemType.OPERATION_CANCELLED.uri().toString());
        assertThatThrownBy(() -> ops.cancel(id)).isInstanceOf(OperationRefused.class)
                .satisfies(e -> assertThat(((OperationRefused) e).type()).isEqualTo(ProblemType.NOT_READY));
        assertThat(events).extracting(BusEvent::kind).contains("operation-cancelling", "operation-cancelled");
    }

    @Test
    void howManyRunAndHowManyAreKeptAreLimits() throws Exception {
        Operations ops = operations(1, 2);
        CountDownLatch release = new CountDownLatch(1);
        String first = ops.start("a", "/x", p -> {
            p.await(() -> release.getCount() == 0, Duration.ofMinutes(5));
            return 1;
        }).id();
        assertThatThrownBy(() -> ops.start("b", "/x", p -> 2)).isInstanceOf(OperationRefused.class)
                .satisfies(e -> assertThat(((OperationRefused) e).type()).isEqualTo(ProblemType.LIMIT_REACHED))
                .hasMessageContaining("max-running");
        release.countDown();
        ops.awaitEnd(first, Duration.ofSeconds(30));
        String second = ops.start("b", "/x", p -> 2).id();
        ops.awaitEnd(second, Duration.ofSeconds(30));
        String third = ops.start("c", "/x", p -> 3).id();   // two are kept: the oldest finished one makes room
        ops.awaitEnd(third, Duration.ofSeconds(30));
        assertThat(ops.list()).extracting(OperationView::id).containsExactly(third, second);
        assertThatThrownBy(() -> ops.show(first)).isInstanceOf(OperationRefused.class)
                .satisfies(e -> assertThat(((OperationRefused) e).type()).isEqualTo(ProblemType.NO_SUCH_OPERATION));
        assertThat(ops.cancelOrForget(second)).as("a finished operation is forgotten").isTrue();
        assertThat(ops.list()).extracting(OperationView::id).containsExactly(third);
    }
}
