package dev.jvbus.app.console;

import dev.jvbus.app.service.OperationRefused;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A refusal shown on the form that caused it: the problem's message beside the field it names, or at the
 * top of the form when it names none of the form's fields. {@code form} tells apart the many small forms
 * of one page (every container has a "new network" form with a {@code name} field).
 */
public record FormProblem(String form, String field, String title, String message, int status) {

    /**
     * The problem of {@code e} on {@code form}, whose inputs are {@code fields}. The service names the input
     * as the API does ({@code field}: "name", "limit.deny", "parameters.mac"; {@code where}: a JSON pointer
     * into a document): the console's form field is its first part ({@code limit}, {@code mac}), or the
     * document itself.
     */
    public static FormProblem of(String form, OperationRefused e, Set<String> fields) {
        String field = fieldOf(e.where());
        return new FormProblem(form, field != null && fields.contains(field) ? field : null, e.type().title(), e.getMessage(),
                e.type().status());
    }

    static String fieldOf(Map<String, Object> where) {
        Object f = where.get("field");
        if (f instanceof String s && !s.isBlank()) {
            if (s.startsWith("parameters.")) return s.substring("parameters.".length());
            int dot = s.indexOf('.');
            return dot < 0 ? s : s.substring(0, dot);
        }
        return where.containsKey("where") ? "document" : null;
    }

    /** The message to show beside {@code field} of {@code form}, or null. */
    public String at(String form, String field) {
        return this.form.equals(form) && Objects.equals(this.field, field) ? message : null;
    }

    /** The message to show at the top of {@code form} (it named none of its fields), or null. */
    public String top(String form) {
        return at(form, null);
    }
}
