package dev.jvbus.app.security;

import dev.jvbus.app.service.ProblemType;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import org.springframework.security.authentication.UsernamePasswordAuthenticationToken;
import org.springframework.security.core.authority.SimpleGrantedAuthority;
import org.springframework.security.core.context.SecurityContext;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * {@code Authorization: Bearer <token>}: a token {@link ApiTokens} knows authenticates the request with
 * its role (the principal is {@code token:<name>}); any other token is refused at once with a 401
 * problem (RFC 6750's {@code invalid_token}), never passed on to HTTP Basic. A request without a bearer
 * token goes on to the other authentication untouched. Made by {@link SecurityConfiguration}, not a bean,
 * so the servlet container does not run it a second time outside the security chain.
 */
final class BearerTokens extends OncePerRequestFilter {
    private final ApiTokens tokens;

    BearerTokens(ApiTokens tokens) {
        this.tokens = tokens;
    }

    @Override
    protected void doFilterInternal(HttpServletRequest req, HttpServletResponse res, FilterChain chain) throws ServletException, IOException {
        String header = req.getHeader("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            chain.doFilter(req, res);
            return;
        }
        Optional<ApiTokens.Stored> token = tokens.authenticate(header.substring(7).trim());
        if (token.isEmpty()) {
            ProblemResponses.write(res, ProblemType.UNAUTHENTICATED, "the bearer token is not valid (unknown, revoked or mistyped);"
                    + " an admin mints one with POST /api/v1/tokens", "Bearer realm=\"jvbus\", error=\"invalid_token\"");
            return;
        }
        ApiTokens.Stored t = token.get();
        SecurityContext context = SecurityContextHolder.createEmptyContext();
        context.setAuthentication(UsernamePasswordAuthenticationToken.authenticated("token:" + t.name(), null,
                List.of(new SimpleGrantedAuthority("ROLE_" + t.role().name()))));
        SecurityContextHolder.setContext(context);
        try {
            chain.doFilter(req, res);
        } finally {
            SecurityContextHolder.clearContext();
        }
    }
}
