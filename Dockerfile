# The bus's management app, unprivileged. Build the jar first (the image does not run Maven):
#   ./jvbus mvn -DskipTests package && docker compose up --build
# Not exercised in CI (no Docker engine there); DeployFilesTest checks this file and docker-compose.yml.
FROM eclipse-temurin:25-jre
# A system user of its own; the bus needs no capability for its sockets, memfds and eventfds
# (TAP ports in a network namespace would: leave those to a host install).
RUN useradd --system --uid 10001 --home-dir /var/lib/jvbus jvbus \
 && mkdir -p /var/lib/jvbus /run/jvbus \
 && chown jvbus:jvbus /var/lib/jvbus /run/jvbus \
 && chmod 0700 /var/lib/jvbus /run/jvbus
COPY management-app/target/jvbus-management-app.jar /app/jvbus.jar
USER jvbus
WORKDIR /var/lib/jvbus
# The topology store and the generated admin password's hash; the sockets clients connect to.
VOLUME ["/var/lib/jvbus", "/run/jvbus"]
EXPOSE 8080
# Liveness without curl (the JRE image has bash): /actuator/health answers without credentials.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /actuator/health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -q '\"UP\"' <&3"]
# Inside the container the app listens on every interface (Prometheus reaches it over the compose
# network); docker-compose.yml publishes its port on the host's 127.0.0.1 only.
# The bus's JVM options are the ./jvbus script's BUS_JVM (DEPLOY.md, "JVM options").
ENTRYPOINT ["java", "--enable-native-access=ALL-UNNAMED", "-XX:-UseCompressedOops", "-jar", "/app/jvbus.jar", \
            "--jvbus.data-dir=/var/lib/jvbus", "--jvbus.runtime-dir=/run/jvbus", "--server.address=0.0.0.0"]
