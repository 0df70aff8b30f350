package dev.jvbus.app.console;

import dev.jvbus.app.service.ContainerService;
import dev.jvbus.app.service.ContainerView;
import dev.jvbus.app.service.DeviceRequest;
import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.DeviceTypeView;
import dev.jvbus.app.service.DeviceView;
import dev.jvbus.app.service.FeatureLimit;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.ProblemType;
import dev.jvbus.app.service.WithdrawnFeature;
import jakarta.servlet.http.HttpServletResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.springframework.stereotype.Controller;
import org.springframework.ui.Model;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.servlet.mvc.support.RedirectAttributes;

/**
 * The hotplug form: a type (one page per type, so its features are known without script), the network, a
 * MAC (generated when empty), an MTU, and the feature limit as one checkbox per feature the type can offer,
 * grouped by meaning, each with its one-line meaning. Beside it, what a guest could negotiate under that
 * limit: recomputed by htmx when a box changes, or by the Preview button without script.
 */
@Controller
@RequestMapping("/console/containers/{c}")
class HotplugController {
    static final Set<String> FIELDS = Set.of("type", "network", "mac", "mtu", "limit", "parameters");
    private final ContainerService containers;
    private final DeviceService devices;

    HotplugController(ContainerService containers, DeviceService devices) {
        this.containers = containers;
        this.devices = devices;
    }

    /**
     * What the form holds: typed values, the features left checked (all, on a fresh form) and further model
     * parameters as typed ({@code queue-pairs=2}, {@link #parameters}).
     */
    record HotplugForm(String type, String network, String mac, String mtu, List<String> allowed, String parameters) { }

    @GetMapping("/hotplug")
    String form(@PathVariable String c, @RequestParam(required = false) String type, Model model) {
        ContainerView container = containers.show(c);
        DeviceTypeView t = type(type);
        String network = container.networks().isEmpty() ? "" : container.networks().getFirst();
        HotplugForm form = new HotplugForm(t.type(), network, "", "", t.features().stream().map(DeviceTypeView.Feature::shortName).toList(), "");
        return page(c, container, t, form, model);
    }

    /**
     * {@code action=plug} hotplugs and goes to the overview; {@code action=preview} (the no-script button, and
     * htmx on every change, which takes only the preview back) shows what a guest could negotiate.
     */
    @PostMapping("/devices")
    String plug(@PathVariable String c, @RequestParam(defaultValue = "") String type, @RequestParam(defaultValue = "") String network,
                @RequestParam(defaultValue = "") String mac, @RequestParam(defaultValue = "") String mtu,
                @RequestParam(name = "allow", required = false) List<String> allow, @RequestParam(defaultValue = "") String parameters,
                @RequestParam(defaultValue = "plug") String action,
                @RequestHeader(name = "HX-Request", required = false) String htmx, Model model, HttpServletResponse res,
                RedirectAttributes flash) {
        ContainerView container = containers.show(c);
        DeviceTypeView t = type(type);
        HotplugForm form = new HotplugForm(t.type(), network, mac, mtu, allow == null ? List.of() : allow, parameters);
        if (!action.equals("plug")) {
            page(c, container, t, form, model);
            return htmx != null ? "console/hotplug :: preview" : "console/hotplug";
        }
        try {
            DeviceView d = devices.add(c, new DeviceRequest(t.type(), network.isBlank() ? null : network, mac.isBlank() ? null : mac.trim(),
                    mtu(mtu), limit(t, form.allowed()), parameters(parameters)));
            flash.addFlashAttribute("notice", d.type() + " device " + d.devid() + " plugged into container '" + c + "'"
                    + (d.features().limited().isEmpty() ? "" : ", without " + String.join(", ", d.features().limited())));
            return "redirect:/console#device-" + c + "-" + d.devid();
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("hotplug", e, FIELDS));
            return page(c, container, t, form, model);
        }
    }

    private String page(String c, ContainerView container, DeviceTypeView t, HotplugForm form, Model model) {
        model.addAttribute("container", container);
        model.addAttribute("types", devices.types());
        model.addAttribute("type", t);
        model.addAttribute("groups", FeatureGroups.of(t.features()));
        model.addAttribute("form", form);
        try {
            // The device's own offer for these parameters (virtio-net with queue-pairs=1 offers no MQ), then the limit's.
            Map<String, String> params = parameters(form.parameters());
            List<String> offer = devices.offerUnder(t.type(), limit(t, form.allowed()), params);
            List<String> forParams = devices.offerUnder(t.type(), FeatureLimit.NONE, params);
            // Unchecking a feature takes with it those that require it (GUEST_CSUM: GUEST_TSO4...), as the device will.
            List<WithdrawnFeature> withdrawn = devices.withdrawnUnder(t.type(), limit(t, form.allowed()), params);
            List<String> withdrawnNames = withdrawn.stream().map(WithdrawnFeature::feature).toList();
            model.addAttribute("offer", offer);
            List<String> withheld = new ArrayList<>(), notForParams = new ArrayList<>();
            for (DeviceTypeView.Feature f : t.features())
                if (!forParams.contains(f.name())) notForParams.add(f.name());
                else if (!offer.contains(f.name()) && !withdrawnNames.contains(f.name())) withheld.add(f.name());
            model.addAttribute("withheld", withheld);
            model.addAttribute("withdrawn", withdrawn);
            model.addAttribute("notForParams", notForParams);
            model.addAttribute("warnings", warnings(t, offer));
        } catch (OperationRefused e) {
            model.addAttribute("offerProblem", e.getMessage());
        }
        return "console/hotplug";
    }

    /**
     * The further model parameters as typed: {@code name=value} pairs separated by spaces or commas ({@code queue-pairs=2
     * queue-size=256}); none when blank. The model checks the values; here only the shape.
     */
    static Map<String, String> parameters(String typed) {
        Map<String, String> p = new java.util.LinkedHashMap<>();
        if (typed == null || typed.isBlank()) return p;
        for (String pair : typed.trim().split("[\\s,]+")) {
            int eq = pair.indexOf('=');
            if (eq <= 0 || eq == pair.length() - 1)
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a model parameter is name=value (queue-pairs=2), not '" + pair + "'",
                        Map.of("field", "parameters"));
            p.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
        return p;
    }

    /** Every feature checked: no limit. Otherwise the ones left unchecked are denied (a model's new feature is then offered). */
    static FeatureLimit limit(DeviceTypeView t, List<String> allowed) {
        List<String> deny = new ArrayList<>();
        for (DeviceTypeView.Feature f : t.features())
            if (!allowed.contains(f.shortName()) && !allowed.contains(f.name())) deny.add(f.shortName());
        return deny.isEmpty() ? FeatureLimit.NONE : new FeatureLimit(null, deny);
    }

    /** What a person should know about an offer before plugging it in. */
    static List<String> warnings(DeviceTypeView t, List<String> offer) {
        List<String> w = new ArrayList<>();
        if (t.virtio() && offer.stream().noneMatch(n -> n.endsWith("_VERSION_1")))
            w.add("without VERSION_1 a virtio 1.x driver (Linux, DPDK, this bus's clients) will not take the device");
        if (t.virtio() && offer.stream().noneMatch(n -> n.endsWith("_F_MAC")))
            w.add("without MAC the guest makes up its own address, and the switch drops what it sends from it unless mac-spoof-check=off");
        return w;
    }

    private DeviceTypeView type(String type) {
        List<DeviceTypeView> all = devices.types();
        if (type == null || type.isBlank())
            return all.stream().filter(t -> t.type().equals("virtio-net")).findFirst().orElse(all.getFirst());
        return all.stream().filter(t -> t.type().equals(type)).findFirst().orElseThrow(() -> new OperationRefused(
                ProblemType.UNKNOWN_DEVICE_TYPE, "unknown device type '" + type + "'; this bus has "
                + all.stream().map(DeviceTypeView::type).toList(), Map.of("field", "type")));
    }

    private static Integer mtu(String mtu) {
        if (mtu == null || mtu.isBlank()) return null;
        try {
            return Integer.valueOf(mtu.trim());
        } catch (NumberFormatException e) {
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "the MTU is a number of bytes, not '" + mtu + "'", Map.of("field", "mtu"));
        }
    }
}
