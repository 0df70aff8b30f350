# Runs the management app built by `./jvbus mvn -DskipTests package`. Not exercised in CI (no Docker engine there).
FROM eclipse-temurin:25-jre
RUN useradd --system --uid 10001 jvbus
USER jvbus
WORKDIR /app
COPY management-app/target/jvbus-management-app.jar /app/jvbus.jar
ENV JVBUS_RUNTIME_DIR=/run/jvbus
ENTRYPOINT ["java", "--enable-native-access=ALL-UNNAMED", "-jar", "/app/jvbus.jar"]
