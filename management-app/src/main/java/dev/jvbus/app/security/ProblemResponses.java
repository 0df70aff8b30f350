package dev.jvbus.app.security;

import dev.jvbus.app.service.ProblemType;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Refusals made by the security filters, before any controller runs, as the same RFC 9457
 * documents the API gives everywhere else (Spring's default would be its own error JSON).
 */
final class ProblemResponses {
    private ProblemResponses() { }

    static void write(HttpServletResponse res, ProblemType type, String detail, boolean challenge) throws IOException {
        write(res, type, detail, challenge ? "Basic realm=\"jvbus\"" : null);
    }

    /** With the {@code WWW-Authenticate} challenge given (null: none). */
    static void write(HttpServletResponse res, ProblemType type, String detail, String challenge) throws IOException {
        res.setStatus(type.status());
        if (challenge != null) res.setHeader("WWW-Authenticate", challenge);
        res.setContentType("application/problem+json");
        res.setCharacterEncoding(StandardCharsets.UTF_8.name());
        res.getWriter().write("{\"type\":\"" + type.uri() + "\",\"title\":\"" + type.title() + "\",\"status\":" + type.status()
                + ",\"detail\":\"" + detail.replace("\\", "\\\\").replace("\"", "\\\"") + "\"}");
    }
}
