package dev.jvbus.app.security;

import dev.jvbus.app.DataDirectory;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpMethod;
import dev.jvbus.app.service.ProblemType;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.core.userdetails.User;
import org.springframework.security.core.userdetails.UserDetails;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.security.crypto.factory.PasswordEncoderFactories;
import org.springframework.security.crypto.password.PasswordEncoder;
import org.springframework.security.provisioning.InMemoryUserDetailsManager;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.authentication.www.BasicAuthenticationFilter;

/**
 * Two roles: an admin changes things, a viewer only reads. The API takes HTTP Basic or a bearer token
 * an admin minted ({@link ApiTokens}, {@link BearerTokens}) and keeps no session (so no CSRF token:
 * nothing rides on a cookie); tokens are an admin's business only, listing included; {@code /actuator/health} answers anyone,
 * for an orchestrator's liveness probe; everything else needs credentials.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(SecurityProperties.class)
class SecurityConfiguration {

    @Bean
    PasswordEncoder passwordEncoder() {
        return PasswordEncoderFactories.createDelegatingPasswordEncoder();
    }

    @Bean
    UserDetailsService users(SecurityProperties props, PasswordEncoder encoder, DataDirectory data) {
        List<UserDetails> users = new ArrayList<>();
        boolean adminConfigured = false;
        for (SecurityProperties.User u : props.users()) {
            if (u.name() == null || u.password() == null || u.role() == null)
                throw new IllegalStateException("jvbus.security.users: every user needs a name, a password (hash) and a role (admin or viewer)");
            adminConfigured |= u.name().equals("admin");
            users.add(User.withUsername(u.name()).password(u.password()).roles(u.role().name()).build());
        }
        if (!adminConfigured)
            users.add(User.withUsername("admin").password(AdminPassword.hash(data.path(), encoder, System.out)).roles("ADMIN").build());
        InMemoryUserDetailsManager manager = new InMemoryUserDetailsManager(users);
        // Only its lookup, not the manager: Spring "upgrades" the password of a UserDetailsPasswordService to its
        // default encoding at the first login, so a {noop} (or any non-bcrypt) entry became a bcrypt hash in memory
        // and every later request paid a bcrypt check (100-150 ms here, twice in a migration's downtime). Kept only in
        // memory, next to the configured value it came from, the new hash protected nothing; what is configured is checked.
        return manager::loadUserByUsername;
    }

    /**
     * The web console ({@code /console/**}, and {@code /} which leads there): form login with a session and
     * CSRF tokens on every form, logout by POST; the same users and roles as the API. A viewer reads every
     * page; anything but GET and HEAD needs the admin role, so a viewer's forged POST is refused here, before
     * any controller. Ordered before the API's chain, which takes every other path as it did.
     */
    @Bean
    @Order(1)
    SecurityFilterChain console(HttpSecurity http) throws Exception {
        return http
                .securityMatcher("/", "/console", "/console/**")
                .authorizeHttpRequests(a -> a
                        .requestMatchers("/", "/console/login", "/console/denied", "/console/assets/**", "/console/webjars/**").permitAll()
                        .requestMatchers(HttpMethod.GET, "/console", "/console/**").hasAnyRole("ADMIN", "VIEWER")
                        .requestMatchers(HttpMethod.HEAD, "/console", "/console/**").hasAnyRole("ADMIN", "VIEWER")
                        .anyRequest().hasRole("ADMIN"))
                .formLogin(f -> f.loginPage("/console/login").defaultSuccessUrl("/console", true).failureUrl("/console/login?error"))
                .logout(l -> l.logoutUrl("/console/logout").logoutSuccessUrl("/console/login?logout"))
                .exceptionHandling(x -> x.accessDeniedPage("/console/denied"))
                .build();
    }

    @Bean
    SecurityFilterChain api(HttpSecurity http, ApiTokens tokens) throws Exception {
        return http
                .addFilterBefore(new BearerTokens(tokens), BasicAuthenticationFilter.class)
                .authorizeHttpRequests(a -> a
                        .requestMatchers("/actuator/health", "/actuator/health/**").permitAll()
                        .requestMatchers("/error").permitAll()   // the problem document of a refused request, whoever sent it
                        .requestMatchers("/api/v1/tokens", "/api/v1/tokens/**").hasRole("ADMIN")
                        .requestMatchers(HttpMethod.GET, "/**").hasAnyRole("ADMIN", "VIEWER")
                        .requestMatchers(HttpMethod.HEAD, "/**").hasAnyRole("ADMIN", "VIEWER")
                        .anyRequest().hasRole("ADMIN"))
                .httpBasic(b -> b.authenticationEntryPoint((req, res, e) -> ProblemResponses.write(res, ProblemType.UNAUTHENTICATED,
                        "this needs credentials: HTTP Basic (user admin, or a user from jvbus.security.users) or a bearer token", true)))
                .exceptionHandling(x -> x.accessDeniedHandler((req, res, e) -> ProblemResponses.write(res, ProblemType.FORBIDDEN,
                        req.getMethod() + " " + req.getRequestURI() + (req.getRequestURI().startsWith("/api/v1/tokens")
                                ? " is for admins only: it needs the admin role" : " changes the bus: it needs the admin role"), false)))
                .csrf(c -> c.disable())
                .sessionManagement(s -> s.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
                .build();
    }
}
