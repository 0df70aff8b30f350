package dev.jvbus.app.security;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import org.springframework.security.crypto.password.PasswordEncoder;

/**
 * The embedded default's admin password: generated at first start, printed once on one line, and
 * only its hash kept, in {@code <data-dir>/admin-password.hash} (owner-only). Later starts read the
 * hash and print where it is; deleting the file makes the next start generate a new password.
 */
final class AdminPassword {
    static final String FILE = "admin-password.hash";

    private AdminPassword() { }

    /** The stored hash, generating (and printing) a password first when there is none. */
    static String hash(Path dataDir, PasswordEncoder encoder, PrintStream out) {
        Path file = dataDir.resolve(FILE);
        try {
            if (Files.exists(file)) {
                out.println("jvbus: user admin, password as printed at first start (its hash is in " + file + ")");
                return Files.readString(file, StandardCharsets.UTF_8).trim();
            }
            Files.createDirectories(dataDir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            byte[] raw = new byte[18];
            new SecureRandom().nextBytes(raw);
            String password = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
            String hash = encoder.encode(password);
            Files.writeString(file, hash + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            out.println("jvbus: user admin, password " + password + " (printed once; only its hash is kept, in " + file + ")");
            return hash;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the admin password's hash in " + file + ": " + e.getMessage(), e);
        }
    }
}
