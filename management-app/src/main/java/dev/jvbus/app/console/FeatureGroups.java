package dev.jvbus.app.console;

import dev.jvbus.app.service.DeviceTypeView;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The features of a device type grouped by what they are about, as a hotplug form shows them: offloads
 * (work a side may leave to the other), rings (how buffers move), control (what the config space and
 * control paths tell). Grouped by name, so a model's new feature lands in a group without code here, and
 * in "other" when its name says nothing this knows.
 */
public final class FeatureGroups {
    private FeatureGroups() { }

    /** One group: its title, a line on what its features decide, and the features in bit order. */
    public record Group(String id, String title, String meaning, List<DeviceTypeView.Feature> features) { }

    private static final String[][] GROUPS = {
            {"offloads", "Offloads", "work one side may leave to the other: checksums, segmentation, scatter-gather"},
            {"rings", "Rings", "how buffers move between driver and device: ring layout, descriptors, notifications, merged buffers"},
            {"control", "Control", "what the config space and control paths carry: MAC, MTU, link status, events"},
            {"other", "Other", "features this console has no group for"}};

    public static List<Group> of(List<DeviceTypeView.Feature> features) {
        Map<String, List<DeviceTypeView.Feature>> by = new LinkedHashMap<>();
        for (String[] g : GROUPS) by.put(g[0], new ArrayList<>());
        for (DeviceTypeView.Feature f : features) by.get(groupOf(f.shortName())).add(f);
        List<Group> out = new ArrayList<>();
        for (String[] g : GROUPS) if (!by.get(g[0]).isEmpty()) out.add(new Group(g[0], g[1], g[2], List.copyOf(by.get(g[0]))));
        return out;
    }

    static String groupOf(String shortName) {
        String n = shortName.toUpperCase(java.util.Locale.ROOT);
        if (n.contains("CSUM") || n.contains("TSO") || n.contains("UFO") || n.contains("ECN") || n.contains("GSO") || n.equals("SG"))
            return "offloads";
        if (n.equals("VERSION_1") || n.contains("RING") || n.contains("DESC") || n.contains("EVENT_IDX") || n.contains("RXBUF")
                || n.contains("ORDER") || n.contains("NOTIFY") || n.contains("LAYOUT"))
            return "rings";
        if (n.equals("MAC") || n.equals("MTU") || n.equals("STATUS") || n.startsWith("CTRL") || n.equals("MQ") || n.contains("ANNOUNCE")
                || n.startsWith("EVQ") || n.contains("LINK") || n.contains("SPEED"))
            return "control";
        return "other";
    }
}
