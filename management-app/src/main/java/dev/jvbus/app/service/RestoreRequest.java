package dev.jvbus.app.service;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import tools.jackson.databind.JsonNode;

/**
 * A restore as the API takes it: either a snapshot document as a snapshot returned it (fed back
 * as it is), or {@code {"snapshot": <document>, "overrides": {...}}} with what the target changes:
 * <pre>
 * "overrides": {"network": "lan1",                      the network the device joins here
 *               "limit": {"deny": ["MRG_RXBUF"]},        this bus's operator limit (default: the one it was saved under)
 *               "vhostUser": {"socket": "/run/x.sock"},  serve it on vhost-user at this socket
 *               "tap": {"namespace": "ns2",             reach it from the host through a TAP port on its network,
 *                       "ifname": "jv%d"}}              in this network namespace (ifname default tap%d)
 * </pre>
 * (Firecracker's {@code network_overrides}, for every connector: a socket path or a TAP namespace.)
 * The one place that reads that shape; a mistake is MALFORMED_DOCUMENT with {@code where} as a JSON pointer.
 */
public record RestoreRequest(JsonNode snapshot, String snapshotAt, Overrides overrides) {

    /** What the target changes; each null when not given. */
    public record Overrides(String network, FeatureLimit limit, Path vhostUserSocket, PortRequest tap) {
        static final Overrides NONE = new Overrides(null, null, null, null);
    }

    private static final Set<String> WRAPPER = Set.of("snapshot", "overrides");
    private static final Set<String> OVERRIDES = Set.of("network", "limit", "vhostUser", "tap");

    public static RestoreRequest parse(JsonNode body) {
        if (body == null || !body.isObject())
            throw malformed("/", "the body is a snapshot document, or {\"snapshot\": <document>, \"overrides\": {...}}");
        if (body.has("format")) return new RestoreRequest(body, "", Overrides.NONE);
        if (!body.has("snapshot"))
            throw malformed("/snapshot", "the body is a snapshot document, or {\"snapshot\": <document>, \"overrides\": {...}}");
        for (String n : body.propertyNames())
            if (!WRAPPER.contains(n)) throw malformed("/" + n, "unknown member '" + n + "' (a restore takes \"snapshot\" and \"overrides\")");
        JsonNode o = body.get("overrides");
        return new RestoreRequest(body.get("snapshot"), "/snapshot", o == null || o.isNull() ? Overrides.NONE : overrides(o));
    }

    private static Overrides overrides(JsonNode o) {
        if (!o.isObject()) throw malformed("/overrides", "\"overrides\" is an object");
        for (String n : o.propertyNames())
            if (!OVERRIDES.contains(n))
                throw malformed("/overrides/" + n, "unknown override '" + n + "' (there are: limit, network, tap, vhostUser)");
        String network = null;
        if (o.has("network")) {
            network = o.get("network").isString() ? o.get("network").asString() : null;
            if (network == null || network.isBlank()) throw malformed("/overrides/network", "\"network\" is a network's name");
        }
        FeatureLimit limit = null;
        if (o.has("limit")) {
            JsonNode l = o.get("limit");
            if (!l.isObject()) throw malformed("/overrides/limit", "\"limit\" is {\"allow\": [...]} or {\"deny\": [...]}");
            for (String n : l.propertyNames())
                if (!n.equals("allow") && !n.equals("deny"))
                    throw malformed("/overrides/limit/" + n, "a limit has \"allow\" or \"deny\", not '" + n + "'");
            limit = new FeatureLimit(names(l, "allow"), names(l, "deny"));
        }
        Path socket = null;
        if (o.has("vhostUser")) {
            JsonNode v = o.get("vhostUser");
            if (!v.isObject() || !v.path("socket").isString() || v.size() != 1)
                throw malformed("/overrides/vhostUser", "\"vhostUser\" is {\"socket\": \"/absolute/path.sock\"}");
            socket = socketPath(v.get("socket").asString());
        }
        PortRequest tap = null;
        if (o.has("tap")) {
            JsonNode t = o.get("tap");
            String shape = "\"tap\" is {\"namespace\": \"<name from ip netns add>\", \"ifname\": \"tap%d\"} (ifname optional)";
            if (!t.isObject()) throw malformed("/overrides/tap", shape);
            for (String n : t.propertyNames())
                if (!n.equals("namespace") && !n.equals("ifname")) throw malformed("/overrides/tap/" + n, shape);
            if (!t.path("namespace").isString() || t.get("namespace").asString().isBlank())
                throw malformed("/overrides/tap/namespace", shape);
            if (t.has("ifname") && (!t.get("ifname").isString() || t.get("ifname").asString().isBlank()))
                throw malformed("/overrides/tap/ifname", shape);
            tap = new PortRequest(t.get("namespace").asString(), t.has("ifname") ? t.get("ifname").asString() : "tap%d");
        }
        return new Overrides(network, limit, socket, tap);
    }

    private static List<String> names(JsonNode limit, String which) {
        JsonNode a = limit.get(which);
        if (a == null) return null;
        if (!a.isArray()) throw malformed("/overrides/limit/" + which, "a list of feature names");
        List<String> out = new ArrayList<>();
        int i = 0;
        for (JsonNode n : a) {
            if (!n.isString()) throw malformed("/overrides/limit/" + which + "/" + i, "a feature name is a string");
            out.add(n.asString());
            i++;
        }
        return out;
    }

    /** An absolute path whose directory exists and where no other kind of file is in the way. */
    private static Path socketPath(String s) {
        Path p;
        try {
            p = Path.of(s);
        } catch (InvalidPathException e) {
            throw malformed("/overrides/vhostUser/socket", "not a path: " + e.getMessage());
        }
        if (!p.isAbsolute()) throw malformed("/overrides/vhostUser/socket", "the socket path must be absolute: " + s);
        if (p.getParent() == null || !Files.isDirectory(p.getParent()))
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "the directory of the socket " + s + " does not exist",
                    Map.of("where", "/overrides/vhostUser/socket"));
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !isSocketLike(p))
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, s + " exists and is not a socket; it is not replaced",
                    Map.of("where", "/overrides/vhostUser/socket"));
        return p;
    }

    /** Not a regular file, directory or link: a socket (left by an earlier run, replaced when served). */
    private static boolean isSocketLike(Path p) {
        try {
            return Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther();
        } catch (java.io.IOException e) {
            return false;
        }
    }

    static OperationRefused malformed(String where, String why) {
        return new OperationRefused(ProblemType.MALFORMED_DOCUMENT, why + " (at " + where + ")", Map.of("where", where));
    }
}
