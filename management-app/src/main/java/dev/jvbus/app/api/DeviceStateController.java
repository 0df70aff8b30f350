package dev.jvbus.app.api;

import dev.jvbus.app.service.MigrateRequest;
import dev.jvbus.app.service.MigrationService;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.OperationView;
import dev.jvbus.app.service.ProblemType;
import dev.jvbus.app.service.RestorePlan;
import dev.jvbus.app.service.SnapshotService;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.net.URI;
import java.time.Duration;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;

/** Save, restore, resume and migrate: each answers 202 with its operation at Location (a dry run answers at once). */
@RestController
@RequestMapping("/api/v1/containers")
@Tag(name = "save and restore", description = "Snapshot a device, restore it here or on another bus, migrate it")
record DeviceStateController(SnapshotService snapshots, MigrationService migrations) {

    /** The snapshot's options: {@code {"stayPaused": true}} leaves the device paused after saving (for a migration by hand). */
    record SnapshotRequest(Boolean stayPaused) { }

    @PostMapping("/{container}/devices/{devid}/snapshot")
    @Operation(summary = "Snapshot a device: quiesce it as briefly as it can, save, resume",
            description = "Answers 202 with the operation; its result (also at /api/v1/operations/{id}/result) is the state document:"
                    + " format and version, the bus version that wrote it, the model's state version, the negotiated features by name,"
                    + " the creation parameters, a SHA-256 checksum of the state and the measured downtime.")
    ResponseEntity<OperationView> snapshot(@PathVariable String container, @PathVariable long devid,
                                           @RequestBody(required = false) SnapshotRequest body) {
        return accepted(snapshots.snapshot(container, devid, body != null && Boolean.TRUE.equals(body.stayPaused())));
    }

    @PostMapping("/{name}/restore")
    @Operation(summary = "Restore a device from a snapshot document",
            description = "The body is the document as a snapshot returned it, or {\"snapshot\": <document>, \"overrides\":"
                    + " {\"network\": ..., \"limit\": {\"deny\": [...]}, \"vhostUser\": {\"socket\": \"/path\"},"
                    + " \"tap\": {\"namespace\": \"ns\", \"ifname\": \"tap%d\"}}}. The checksum and"
                    + " versions are checked and the negotiated features imposed (refused by name when outside this bus's offer or the"
                    + " operator limit). The device comes back paused until its driver is back; then resume it. With dry-run=true the"
                    + " answer is what would happen, and nothing changes. With await-driver=N (seconds, 1..600), as a migrating bus"
                    + " asks: answered once the device is restored (its driver may come now); the operation then waits up to N s for"
                    + " the driver and succeeds with the device still paused, for the caller to resume it; without the driver, or"
                    + " cancelled, the device is removed again. The store is written when the device is resumed. With prepare=N"
                    + " (seconds, 1..600), as a migrating bus asks before it pauses the device: the document was saved while the"
                    + " device ran (its queues as placed, without their positions); answered once the device exists, paused and"
                    + " holding nothing; the operation then waits up to N s for POST .../devices/{devid}/complete-restore (the"
                    + " positions saved at the pause), then up to N s for the driver, and succeeds with the device still paused;"
                    + " never completed, without the driver, or cancelled, the device is removed again.")
    ResponseEntity<?> restore(@PathVariable String name, @RequestParam(name = "dry-run", defaultValue = "false") boolean dryRun,
                              @RequestParam(name = "await-driver", required = false) Long awaitDriver,
                              @RequestParam(name = "prepare", required = false) Long prepare,
                              @io.swagger.v3.oas.annotations.parameters.RequestBody(description = "a snapshot document, or"
                                      + " {\"snapshot\": <document>, \"overrides\": {...}}",
                                      content = @Content(schema = @Schema(type = "object")))
                              @RequestBody JsonNode body) {
        if (dryRun && awaitDriver != null)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a dry run restores nothing, so there is no driver to await:"
                    + " give dry-run=true or await-driver, not both", java.util.Map.of("field", "await-driver"));
        if (prepare != null && (dryRun || awaitDriver != null))
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a prepared restore waits for its completion, then its driver:"
                    + " give prepare alone, not with dry-run or await-driver", java.util.Map.of("field", "prepare"));
        if (prepare != null) return accepted(snapshots.prepareRestore(name, body, Duration.ofSeconds(prepare)));
        if (dryRun) {
            RestorePlan plan = snapshots.dryRun(name, body);
            return ResponseEntity.ok(plan);
        }
        if (awaitDriver != null) return accepted(snapshots.restoreAwaitingDriver(name, body, Duration.ofSeconds(awaitDriver)));
        return accepted(snapshots.restore(name, body));
    }

    @PostMapping("/{container}/devices/{devid}/complete-restore")
    @Operation(summary = "Complete a restore prepared ahead of a migration's pause (restore?prepare=N)",
            description = "The body is {\"operation\": <the prepare operation's id>, \"base\": <the checksum of the state it was"
                    + " prepared from>, \"changes\": <a JSON merge patch (RFC 7386) of that state: usually the queues' positions and"
                    + " the model's state, as saved at the pause>, \"checksum\": {\"algorithm\": \"SHA-256\", \"value\": <of the"
                    + " whole state once patched>}}. Answers 200 with {\"driverBack\": true|false, \"operation\": <the prepare"
                    + " operation>} once the driver is back (the device waits paused to be resumed; the operation succeeds), or"
                    + " the operation ended without it, or 20 s passed (still running). Refused, the device left as"
                    + " it was, when the operation prepared no such device or waits no more (not-ready), the base is stale or the"
                    + " change is one a restored driver cannot take without renegotiating: status, features, parameters (refused),"
                    + " or the checksum does not match (malformed-document).")
    ResponseEntity<SnapshotService.Completed> completeRestore(@PathVariable String container, @PathVariable long devid,
                                                  @io.swagger.v3.oas.annotations.parameters.RequestBody(description = "{\"operation\","
                                                          + " \"base\", \"changes\", \"checksum\"}",
                                                          content = @Content(schema = @Schema(type = "object")))
                                                  @RequestBody JsonNode body) {
        return ResponseEntity.ok(snapshots.completeRestore(container, devid, body));
    }

    @PostMapping("/{container}/devices/{devid}/resume")
    @Operation(summary = "Let a paused device run: a restored one once its driver shared memory and doorbells again",
            description = "Waits up to driver-timeout seconds (default 60) for the driver, as an operation. With"
                    + " await-running=true, as a migrating bus asks: answered once the device runs (the operation, at its step"
                    + " 'record', then writes the store and succeeds) or once the operation ended without that.")
    ResponseEntity<OperationView> resume(@PathVariable String container, @PathVariable long devid,
                                         @RequestParam(name = "driver-timeout", defaultValue = "60") long driverTimeout,
                                         @RequestParam(name = "await-running", defaultValue = "false") boolean awaitRunning) {
        Duration wait = Duration.ofSeconds(driverTimeout);
        return accepted(awaitRunning ? snapshots.resumeAnsweringWhenRunning(container, devid, wait) : snapshots.resume(container, devid, wait));
    }

    @PostMapping("/{container}/devices/{devid}/migrate")
    @Operation(summary = "Migrate a device to another bus through its API",
            description = "{\"to\": \"http://other-bus:8080\", \"credentials\": {\"user\": ..., \"password\": ...} or {\"token\": ...},"
                    + " \"container\": (default the same), \"overrides\": (as for a restore), \"driverTimeoutSeconds\": 60}."
                    + " Prepares the device on the target from a state saved while it runs, then quiesces, saves, tells its driver"
                    + " to move, completes the target's device with what changed, starts it there and releases it here, in that order; if the target"
                    + " fails at any step, or the operation is cancelled, the device resumes here as it was. While it runs, unplugging,"
                    + " snapshotting or migrating the device is refused (device-busy).")
    ResponseEntity<OperationView> migrate(@PathVariable String container, @PathVariable long devid, @RequestBody MigrateRequest body) {
        return accepted(migrations.migrate(container, devid, body));
    }

    private static ResponseEntity<OperationView> accepted(OperationView op) {
        return ResponseEntity.accepted().location(URI.create("/api/v1/operations/" + op.id())).body(op);
    }
}
