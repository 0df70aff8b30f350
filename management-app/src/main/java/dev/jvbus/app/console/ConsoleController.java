package dev.jvbus.app.console;

import dev.jvbus.app.service.BusEvent;
import dev.jvbus.app.service.ContainerService;
import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.EventStream;
import dev.jvbus.app.service.ExposureRequest;
import dev.jvbus.app.service.ExposureService;
import dev.jvbus.app.service.NetworkService;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.PortRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
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
import org.thymeleaf.ITemplateEngine;
import org.thymeleaf.context.Context;

/**
 * The overview (the tree and the last events) and its small forms: containers, networks, TAP ports and
 * exposures. Every form posts and redirects back (so it works without JavaScript); a refusal renders the
 * overview again with the problem's message beside the field that caused it, under the problem's status.
 */
@Controller
@RequestMapping("/console")
class ConsoleController {
    private final Overview overview;
    private final RecentEvents recent;
    private final ContainerService containers;
    private final NetworkService networks;
    private final DeviceService devices;
    private final ExposureService exposures;
    private final EventStream events;
    private final ITemplateEngine templates;

    ConsoleController(Overview overview, RecentEvents recent, ContainerService containers, NetworkService networks, DeviceService devices,
                      ExposureService exposures, EventStream events, ITemplateEngine templates) {
        this.overview = overview;
        this.recent = recent;
        this.containers = containers;
        this.networks = networks;
        this.devices = devices;
        this.exposures = exposures;
        this.events = events;
        this.templates = templates;
    }

    @GetMapping
    String overview(Model model) {
        fill(model);
        return "console/overview";
    }

    /** The tree alone, for the overview's live refresh after an event. */
    @GetMapping("/tree")
    String tree(Model model) {
        fill(model);
        return "console/overview :: tree";
    }

    @GetMapping("/login")
    String login() {
        return "console/login";
    }

    /** Where the security chain sends a request the user's role may not make (a viewer's POST). */
    @RequestMapping("/denied")
    String denied(HttpServletResponse res) {
        res.setStatus(403);
        return "console/denied";
    }

    // ---------------------------------------------------------------- containers

    @PostMapping("/containers")
    String createContainer(@RequestParam(defaultValue = "") String name, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return act("container-new", Set.of("name"), Map.of("name", name), model, res, flash,
                () -> "container '" + containers.create(name.trim()).name() + "' created");
    }

    @GetMapping("/containers/{c}/delete")
    String confirmDeleteContainer(@PathVariable String c, Model model) {
        containers.show(c);
        return Confirm.page(model, "Delete container " + c,
                "Every device in it is unplugged (each reset and its driver told), its exposures close and its networks and TAP"
                        + " ports go.", "/console/containers/" + c + "/delete", "Delete container " + c, "/console");
    }

    @PostMapping("/containers/{c}/delete")
    String deleteContainer(@PathVariable String c, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return Confirm.act(model, res, flash, "/console", () -> {
            containers.delete(c);
            return "container '" + c + "' deleted";
        }, () -> confirmDeleteContainer(c, model));
    }

    // ---------------------------------------------------------------- networks and ports

    @PostMapping("/containers/{c}/networks")
    String createNetwork(@PathVariable String c, @RequestParam(defaultValue = "") String name, Model model, HttpServletResponse res,
                         RedirectAttributes flash) {
        return act("network-new-" + c, Set.of("name"), Map.of("name", name), model, res, flash,
                () -> "network '" + networks.create(c, name.trim()).name() + "' created in container '" + c + "'");
    }

    @GetMapping("/containers/{c}/networks/{n}/delete")
    String confirmDeleteNetwork(@PathVariable String c, @PathVariable String n, Model model) {
        networks.show(c, n);
        return Confirm.page(model, "Delete network " + n + " of " + c,
                "Its devices are unplugged first. A TAP port on it is never closed by force: detach it first.",
                "/console/containers/" + c + "/networks/" + n + "/delete", "Delete network " + n, "/console");
    }

    @PostMapping("/containers/{c}/networks/{n}/delete")
    String deleteNetwork(@PathVariable String c, @PathVariable String n, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return Confirm.act(model, res, flash, "/console", () -> {
            networks.delete(c, n, true);
            return "network '" + n + "' of container '" + c + "' deleted";
        }, () -> confirmDeleteNetwork(c, n, model));
    }

    @PostMapping("/containers/{c}/networks/{n}/ports")
    String attachTap(@PathVariable String c, @PathVariable String n, @RequestParam(defaultValue = "") String namespace,
                     @RequestParam(defaultValue = "") String ifname, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return act("port-" + c + "-" + n, Set.of("namespace", "ifname"), Map.of("namespace", namespace, "ifname", ifname), model, res, flash,
                () -> "TAP " + networks.attachPort(c, n, new PortRequest(namespace.trim(), ifname.trim())).ifname() + " attached to network '"
                        + n + "'");
    }

    @PostMapping("/containers/{c}/networks/{n}/ports/{id}/detach")
    String detachTap(@PathVariable String c, @PathVariable String n, @PathVariable int id, Model model, HttpServletResponse res,
                     RedirectAttributes flash) {
        return act("port-" + c + "-" + n, Set.of(), Map.of(), model, res, flash, () -> {
            networks.detachPort(c, n, id);
            return "port " + id + " detached from network '" + n + "'";
        });
    }

    // ---------------------------------------------------------------- exposures

    @PostMapping("/containers/{c}/expose")
    String exposeContainer(@PathVariable String c, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return act("expose-" + c, Set.of(), Map.of(), model, res, flash,
                () -> "container '" + c + "' exposed on shm at " + exposures.create(new ExposureRequest("shm", c, null, null, null)).path());
    }

    @PostMapping("/containers/{c}/devices/{devid}/expose")
    String exposeDevice(@PathVariable String c, @PathVariable long devid, @RequestParam(defaultValue = "server") String mode,
                        @RequestParam(defaultValue = "") String path, Model model, HttpServletResponse res, RedirectAttributes flash) {
        String form = "expose-" + c + "-" + devid;
        return act(form, Set.of("mode", "path"), Map.of("mode", mode, "path", path), model, res, flash,
                () -> "device " + devid + " exposed on vhost-user at " + exposures.create(new ExposureRequest("vhost-user", c, devid,
                        mode.isBlank() ? null : mode, path.isBlank() ? null : path.trim())).path());
    }

    @PostMapping("/exposures/{id}/close")
    String closeExposure(@PathVariable String id, Model model, HttpServletResponse res, RedirectAttributes flash) {
        return act("exposure-" + id, Set.of(), Map.of(), model, res, flash, () -> {
            exposures.close(id);
            return "exposure " + id + " closed";
        });
    }

    // ---------------------------------------------------------------- live events

    /**
     * The bus's events as HTML list items (the overview's htmx SSE extension puts each at the top of the
     * event list and refreshes the tree): the same {@link EventStream} the API's event stream follows.
     */
    @GetMapping(path = "/events", produces = MediaType.TEXT_EVENT_STREAM_VALUE)
    SseEmitter events() {
        SseEmitter emitter = new SseEmitter(0L);
        Runnable cancel = events.subscribe(new EventStream.Sink() {
            @Override
            public void send(BusEvent e) throws Exception {
                emitter.send(SseEmitter.event().name("bus-event").data(render(e).replace("\n", " ")));
            }

            @Override
            public void overrun(int lost) {
                // the page fell behind: it reconnects and shows the bus as it is
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
            emitter.send(SseEmitter.event().comment("jvbus console events"));
        } catch (Exception e) {
            cancel.run();
        }
        return emitter;
    }

    private String render(BusEvent e) {
        Context ctx = new Context(Locale.ROOT, Map.of("e", e, "fmt", ConsoleFormat.INSTANCE));
        return templates.process("console/fragments", Set.of("event"), ctx);
    }

    // ---------------------------------------------------------------- shared

    void fill(Model model) {
        model.addAttribute("tree", overview.tree());
        model.addAttribute("events", recent.newestFirst());
        model.addAttribute("types", devices.types());
    }

    /**
     * Runs a form's change: on success, back to the overview with a notice; refused, the overview again
     * with the problem beside the field (and what was typed kept), under the problem's status.
     */
    private String act(String form, Set<String> fields, Map<String, String> values, Model model, HttpServletResponse res,
                       RedirectAttributes flash, Supplier<String> change) {
        try {
            flash.addFlashAttribute("notice", change.get());
            return "redirect:/console";
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of(form, e, fields));
            model.addAttribute("values", values);
            fill(model);
            return "console/overview";
        }
    }
}
