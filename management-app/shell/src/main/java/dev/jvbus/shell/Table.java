package dev.jvbus.shell;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import tools.jackson.databind.JsonNode;

/** A plain text table with a header line, columns as wide as their widest cell; what every list shows by default. */
final class Table {
    private final List<String> headers;
    private final List<List<String>> rows = new ArrayList<>();

    Table(String... headers) {
        this.headers = List.of(headers);
    }

    Table row(Object... cells) {
        rows.add(Arrays.stream(cells).map(Table::cell).toList());
        return this;
    }

    boolean isEmpty() {
        return rows.isEmpty();
    }

    @Override
    public String toString() {
        int[] width = new int[headers.size()];
        for (int c = 0; c < width.length; c++) {
            width[c] = headers.get(c).length();
            for (List<String> r : rows) width[c] = Math.max(width[c], r.get(c).length());
        }
        StringBuilder sb = new StringBuilder();
        line(sb, headers, width);
        for (List<String> r : rows) line(sb, r, width);
        return sb.toString().stripTrailing();
    }

    /** Two-column "what: value" lines for one resource. */
    static String fields(Object... keyValues) {
        int w = 0;
        for (int i = 0; i < keyValues.length; i += 2) w = Math.max(w, keyValues[i].toString().length());
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < keyValues.length; i += 2)
            sb.append(String.format("%-" + (w + 1) + "s %s%n", keyValues[i] + ":", cell(keyValues[i + 1])));
        return sb.toString().stripTrailing();
    }

    private static void line(StringBuilder sb, List<String> cells, int[] width) {
        for (int c = 0; c < cells.size(); c++) {
            String v = cells.get(c);
            sb.append(c == cells.size() - 1 ? v : String.format("%-" + width[c] + "s  ", v));
        }
        sb.append('\n');
    }

    /** A cell's text: JSON arrays as comma-separated values, missing values as "-". */
    static String cell(Object o) {
        if (o == null) return "-";
        if (o instanceof JsonNode n) {
            if (n.isMissingNode() || n.isNull()) return "-";
            if (n.isArray()) return n.isEmpty() ? "-" : n.valueStream().map(Table::cell).collect(Collectors.joining(","));
            if (n.isValueNode()) return n.asString();
            return n.toString();
        }
        String s = o.toString();
        return s.isEmpty() ? "-" : s;
    }
}
