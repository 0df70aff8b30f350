package dev.jvbus.app.api;

import dev.jvbus.app.service.OperationView;
import dev.jvbus.app.service.Operations;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.util.List;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping("/api/v1/operations")
@Tag(name = "operations", description = "Long operations (snapshot, restore, resume, migrate): progress, cancel, result or problem")
record OperationsController(Operations operations) {

    @GetMapping
    @Operation(summary = "List the operations this bus keeps, newest first")
    List<OperationView> list() {
        return operations.list();
    }

    @GetMapping("/{id}")
    @Operation(summary = "Show an operation: state (running, succeeded, failed, cancelled), steps, and its result or problem")
    OperationView show(@PathVariable String id) {
        return operations.show(id);
    }

    @GetMapping("/{id}/result")
    @Operation(summary = "The result of a succeeded operation alone",
            description = "A snapshot's result is its state document: save it and POST it as it is to .../containers/{name}/restore.")
    Object result(@PathVariable String id) {
        return operations.result(id);
    }

    @PostMapping("/{id}/cancel")
    @Operation(summary = "Cancel a running operation; it undoes what it did and ends cancelled")
    ResponseEntity<OperationView> cancel(@PathVariable String id) {
        return ResponseEntity.accepted().body(operations.cancel(id));
    }

    @DeleteMapping("/{id}")
    @Operation(summary = "Cancel a running operation, or forget a finished one")
    ResponseEntity<OperationView> delete(@PathVariable String id) {
        return operations.cancelOrForget(id) ? ResponseEntity.noContent().build() : ResponseEntity.accepted().body(operations.show(id));
    }
}
