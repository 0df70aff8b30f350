package dev.jvbus.app.console;

import dev.jvbus.app.service.ContainerService;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.OperationView;
import dev.jvbus.app.service.Operations;
import dev.jvbus.app.service.ProblemType;
import dev.jvbus.app.service.RestorePlan;
import dev.jvbus.app.service.SnapshotService;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import org.springframework.http.ContentDisposition;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.stereotype.Controller;
import org.springframework.ui.Model;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.multipart.MultipartFile;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * Long operations in the console: a restore (a state document uploaded, the dry run's answer shown first,
 * then restored on confirmation), and the page of any operation (snapshot, restore, resume, migrate) with
 * its steps as they happen, a cancel button while it runs, and a snapshot's document to download.
 */
@Controller
@RequestMapping("/console")
class OperationsPageController {
    /** A state document is a few kilobytes; a megabyte is far more than any model writes. */
    static final long MAX_DOCUMENT = 1 << 20;
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final ContainerService containers;
    private final SnapshotService snapshots;
    private final Operations operations;

    OperationsPageController(ContainerService containers, SnapshotService snapshots, Operations operations) {
        this.containers = containers;
        this.snapshots = snapshots;
        this.operations = operations;
    }

    @GetMapping("/containers/{c}/restore")
    String restoreForm(@PathVariable String c, Model model) {
        model.addAttribute("container", containers.show(c));
        return "console/restore";
    }

    /**
     * {@code action=check}: the uploaded document (or the one carried from the last answer) is dry-run and the
     * plan shown with a button to restore it; {@code action=restore}: it is restored, and the page of the
     * restore's operation follows.
     */
    @PostMapping("/containers/{c}/restore")
    String restore(@PathVariable String c, @RequestParam(name = "file", required = false) MultipartFile file,
                   @RequestParam(defaultValue = "") String document, @RequestParam(defaultValue = "") String network,
                   @RequestParam(defaultValue = "check") String action, Model model, HttpServletResponse res) {
        model.addAttribute("container", containers.show(c));
        model.addAttribute("network", network);
        try {
            String text = text(file, document);
            model.addAttribute("document", text);
            JsonNode body = body(text, network);
            if (action.equals("restore")) return "redirect:/console/operations/" + snapshots.restore(c, body).id();
            RestorePlan plan = snapshots.dryRun(c, body);
            model.addAttribute("plan", plan);
            return "console/restore";
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("restore", e, Set.of("document", "network")));
            return "console/restore";
        }
    }

    @GetMapping("/operations/{id}")
    String operation(@PathVariable String id, @RequestHeader(name = "HX-Request", required = false) String htmx, Model model) {
        model.addAttribute("op", operations.show(id));
        return htmx != null ? "console/operation :: progress" : "console/operation";
    }

    @PostMapping("/operations/{id}/cancel")
    String cancel(@PathVariable String id, Model model, HttpServletResponse res) {
        try {
            operations.cancel(id);
            return "redirect:/console/operations/" + id;
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("cancel", e, Set.of()));
            model.addAttribute("op", operations.show(id));
            return "console/operation";
        }
    }

    /** A snapshot's state document, as a file to keep and to upload into a restore. */
    @GetMapping("/operations/{id}/document")
    ResponseEntity<byte[]> document(@PathVariable String id) {
        OperationView op = operations.show(id);
        Object result = operations.result(id);
        if (!(result instanceof ObjectNode doc) || !op.kind().equals("snapshot"))
            throw new OperationRefused(ProblemType.NOT_READY, "operation " + id + " is a " + op.kind() + "; only a snapshot has a state document");
        String name = op.subject().replaceFirst("^/api/v1/containers/", "").replace("/devices/", "-") + "-" + id + ".json";
        return ResponseEntity.ok()
                .contentType(MediaType.APPLICATION_JSON)
                .header(HttpHeaders.CONTENT_DISPOSITION, ContentDisposition.attachment().filename(name).build().toString())
                .body(doc.toPrettyString().getBytes(StandardCharsets.UTF_8));
    }

    private static String text(MultipartFile file, String document) {
        if (file != null && !file.isEmpty()) {
            if (file.getSize() > MAX_DOCUMENT)
                throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "the file is " + file.getSize() + " bytes; a state document is at most "
                        + MAX_DOCUMENT, Map.of("field", "document"));
            try {
                return new String(file.getBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "the upload could not be read: " + e.getMessage(),
                        Map.of("field", "document"));
            }
        }
        if (document.isBlank())
            throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "choose a state document (a snapshot's download) to restore",
                    Map.of("field", "document"));
        return document;
    }

    /** The document, wrapped with the network override when one is given (as the API's restore takes it). */
    private static JsonNode body(String text, String network) {
        JsonNode doc;
        try {
            doc = JSON.readTree(text);
        } catch (JacksonException e) {
            throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "the file is not JSON: " + e.getOriginalMessage(), Map.of("field", "document"));
        }
        if (network.isBlank()) return doc;
        ObjectNode wrapped = JSON.createObjectNode();
        wrapped.set("snapshot", doc);
        wrapped.putObject("overrides").put("network", network.trim());
        return wrapped;
    }
}
