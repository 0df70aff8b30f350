package dev.jvbus.app.console;

import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.DeviceView;
import dev.jvbus.app.service.MigrateRequest;
import dev.jvbus.app.service.MigrationService;
import dev.jvbus.app.service.NetworkService;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.OperationView;
import dev.jvbus.app.service.SnapshotService;
import dev.jvbus.net.NetworkInfo;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Map;
import java.util.Set;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Controller;
import org.springframework.ui.Model;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;
import org.springframework.web.servlet.mvc.support.RedirectAttributes;

/**
 * A device's page: what it is (status, features offered, limited and negotiated, parameters, exposures and
 * their sessions), each queue with its live chart and counters, the switch ports of its network with their
 * drops by reason, and what can be done to it: snapshot, migrate, unplug.
 */
@Controller
@RequestMapping("/console/containers/{c}/devices/{devid}")
class DevicePageController {
    static final Set<String> MIGRATE_FIELDS = Set.of("to", "container");
    private final DeviceService devices;
    private final NetworkService networks;
    private final SnapshotService snapshots;
    private final MigrationService migrations;
    private final LiveCounters live;

    DevicePageController(DeviceService devices, NetworkService networks, SnapshotService snapshots, MigrationService migrations,
                         LiveCounters live) {
        this.devices = devices;
        this.networks = networks;
        this.snapshots = snapshots;
        this.migrations = migrations;
        this.live = live;
    }

    @GetMapping
    String page(@PathVariable String c, @PathVariable long devid, Model model) {
        DeviceView d = devices.show(c, devid);
        model.addAttribute("d", d);
        model.addAttribute("mac", devices.mac(c, devid).orElse(null));
        model.addAttribute("network", network(c, d));
        model.addAttribute("targets", migrations.targetNames());
        return "console/device";
    }

    /** Status, features and exposures, for the page's periodic refresh (a driver comes, negotiates, goes). */
    @GetMapping("/summary")
    String summary(@PathVariable String c, @PathVariable long devid, Model model) {
        model.addAttribute("d", devices.show(c, devid));
        return "console/device :: summary";
    }

    /** The switch ports of the device's network, for the page's periodic refresh. */
    @GetMapping("/ports")
    String ports(@PathVariable String c, @PathVariable long devid, Model model) {
        DeviceView d = devices.show(c, devid);
        model.addAttribute("d", d);
        model.addAttribute("network", network(c, d));
        return "console/device :: ports";
    }

    /** The live charts' feed: the queues' rates, at least once a second, as server-sent events. */
    @GetMapping(path = "/live", produces = MediaType.TEXT_EVENT_STREAM_VALUE)
    SseEmitter live(@PathVariable String c, @PathVariable long devid) {
        return live.follow(c, devid);
    }

    @PostMapping("/snapshot")
    String snapshot(@PathVariable String c, @PathVariable long devid, Model model, HttpServletResponse res) {
        try {
            return "redirect:/console/operations/" + snapshots.snapshot(c, devid, false).id();
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("snapshot", e, Set.of()));
            return page(c, devid, model);
        }
    }

    @PostMapping("/migrate")
    String migrate(@PathVariable String c, @PathVariable long devid, @RequestParam(defaultValue = "") String to,
                   @RequestParam(defaultValue = "") String container, Model model, HttpServletResponse res) {
        try {
            // The bus logs in to the target with the credential its operator configured for it: none comes from a form.
            OperationView op = migrations.migrate(c, devid, new MigrateRequest(to.trim(), null, container.isBlank() ? null : container.trim(), null, null));
            return "redirect:/console/operations/" + op.id();
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("migrate", e, MIGRATE_FIELDS));
            model.addAttribute("values", Map.of("to", to, "container", container));
            return page(c, devid, model);
        }
    }

    @GetMapping("/unplug")
    String confirmUnplug(@PathVariable String c, @PathVariable long devid, Model model) {
        DeviceView d = devices.show(c, devid);
        return Confirm.page(model, "Unplug " + d.type() + " device " + devid + " of " + c,
                "The device is reset and its driver told; its switch port closes and its vhost-user exposures with it."
                        + (d.exposures().stream().anyMatch(e -> !e.sessions().isEmpty()) ? " A front-end is connected to it now." : ""),
                "/console/containers/" + c + "/devices/" + devid + "/unplug", "Unplug device " + devid, "/console");
    }

    @PostMapping("/unplug")
    String unplug(@PathVariable String c, @PathVariable long devid, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return Confirm.act(model, res, flash, "/console", () -> {
            devices.remove(c, devid);
            return "device " + devid + " unplugged from container '" + c + "'";
        }, () -> confirmUnplug(c, devid, model));
    }

    private NetworkInfo network(String c, DeviceView d) {
        String n = d.parameters().get("network");
        if (n == null) return null;
        try {
            return networks.show(c, n);
        } catch (OperationRefused gone) {
            return null;
        }
    }
}
