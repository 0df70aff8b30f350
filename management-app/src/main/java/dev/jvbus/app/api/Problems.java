package dev.jvbus.app.api;

import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.ProblemType;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;

/**
 * Every refusal of the REST API as RFC 9457 problem details: a stable {@code type} URI per
 * failure, the title, the status, a {@code detail} a person understands, the {@code instance}
 * (the request path) and, where an input caused it, which one ({@code field}, {@code features}).
 */
@RestControllerAdvice(basePackageClasses = Problems.class)
@Order(Ordered.HIGHEST_PRECEDENCE)   // before Spring's generic handlers, which know no problem types
class Problems {

    @ExceptionHandler(OperationRefused.class)
    ResponseEntity<ProblemDetail> refused(OperationRefused e) {
        ProblemDetail p = of(e.type(), e.getMessage());
        e.where().forEach(p::setProperty);
        return ResponseEntity.status(p.getStatus()).body(p);
    }

    /** A body that is not JSON, or JSON of the wrong shape: say where. */
    @ExceptionHandler(HttpMessageNotReadableException.class)
    ResponseEntity<ProblemDetail> unreadable(HttpMessageNotReadableException e) {
        Throwable cause = e.getMostSpecificCause();
        ProblemDetail p = of(ProblemType.MALFORMED_DOCUMENT, "the request body is not a valid document: "
                + (cause.getMessage() == null ? cause.getClass().getSimpleName() : firstLine(cause.getMessage())));
        return ResponseEntity.status(p.getStatus()).body(p);
    }

    @ExceptionHandler(MethodArgumentTypeMismatchException.class)
    ResponseEntity<ProblemDetail> badPathOrQuery(MethodArgumentTypeMismatchException e) {
        ProblemType type = switch (e.getName()) {
            case "devid" -> ProblemType.NO_SUCH_DEVICE;
            case "id" -> ProblemType.NO_SUCH_PORT;
            default -> ProblemType.INVALID_PARAMETER;
        };
        ProblemDetail p = of(type, "'" + e.getValue() + "' is not a valid " + e.getName());
        p.setProperty("field", e.getName());
        return ResponseEntity.status(p.getStatus()).body(p);
    }

    static ProblemDetail of(ProblemType type, String detail) {
        ProblemDetail p = ProblemDetail.forStatusAndDetail(HttpStatus.valueOf(type.status()), detail);
        p.setType(type.uri());
        p.setTitle(type.title());
        return p;
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

}
