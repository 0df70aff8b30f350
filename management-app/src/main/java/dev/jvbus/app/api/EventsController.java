package dev.jvbus.app.api;

import dev.jvbus.app.service.BusEvent;
import dev.jvbus.app.service.EventStream;
import dev.jvbus.app.service.ProblemType;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;

@RestController
@RequestMapping("/api/v1/events")
@Tag(name = "events", description = "Everything that happens on the bus, as server-sent events")
record EventsController(EventStream stream) {

    @GetMapping(produces = MediaType.TEXT_EVENT_STREAM_VALUE)
    @Operation(summary = "Follow the bus's events",
            description = "Each event's SSE name is its kind (container-created, device-added, device-removed, "
                    + "device-needs-reset, network-created, network-deleted, port-attached, port-detached, token-minted, token-revoked, "
                    + "container-destroyed, exposure-created, exposure-closed, "
                    + "session-opened, session-closed with the peer's pid and uid; operation-started, operation-step, "
                    + "operation-cancelling, operation-succeeded, operation-failed, operation-cancelled); its data is the event "
                    + "as JSON. A client that falls far behind gets an 'overrun' event with a problem document, then the stream ends.")
    SseEmitter follow() {
        SseEmitter emitter = new SseEmitter(0L);   // no timeout: the client decides when to stop
        Runnable cancel = stream.subscribe(new EventStream.Sink() {
            @Override
            public void send(BusEvent e) throws Exception {
                emitter.send(SseEmitter.event().name(e.kind()).data(e, MediaType.APPLICATION_JSON));
            }

            @Override
            public void overrun(int lost) {
                try {
                    var p = Problems.of(ProblemType.LIMIT_REACHED, "this client fell " + lost
                            + " events behind the bus and was dropped; reconnect and re-read the state it shows");
                    emitter.send(SseEmitter.event().name("overrun").data(p, MediaType.APPLICATION_PROBLEM_JSON));
                } catch (Exception ignored) {
                    // it is going away anyway
                }
            }

            @Override
            public void end() {
                emitter.complete();
            }
        });
        emitter.onCompletion(cancel);
        emitter.onError(t -> cancel.run());
        emitter.onTimeout(cancel);
        try {
            // An opening comment flushes the headers, so a client knows it is subscribed before any event.
            emitter.send(SseEmitter.event().comment("jvbus events"));
        } catch (Exception e) {
            cancel.run();
        }
        return emitter;
    }

}
