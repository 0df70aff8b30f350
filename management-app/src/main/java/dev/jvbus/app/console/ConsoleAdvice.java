package dev.jvbus.app.console;

import dev.jvbus.app.service.OperationRefused;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Set;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.ui.Model;
import org.springframework.web.bind.annotation.ControllerAdvice;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.ModelAttribute;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;

/** What every console page has (the formats), and a refusal no form caught: a page with the problem, under its status. */
@ControllerAdvice(basePackageClasses = ConsoleAdvice.class)
@Order(Ordered.HIGHEST_PRECEDENCE)
class ConsoleAdvice {

    @ModelAttribute("fmt")
    ConsoleFormat fmt() {
        return ConsoleFormat.INSTANCE;
    }

    @ExceptionHandler(OperationRefused.class)
    String refused(OperationRefused e, Model model, HttpServletResponse res) {
        return problemPage(model, res, e);
    }

    @ExceptionHandler(MethodArgumentTypeMismatchException.class)
    String badPath(MethodArgumentTypeMismatchException e, Model model, HttpServletResponse res) {
        res.setStatus(404);
        model.addAttribute("fmt", ConsoleFormat.INSTANCE);
        model.addAttribute("problem", new FormProblem("page", null, "Not found", "'" + e.getValue() + "' is not a valid " + e.getName(), 404));
        return "console/problem";
    }

    static String problemPage(Model model, HttpServletResponse res, OperationRefused e) {
        res.setStatus(e.type().status());
        model.addAttribute("fmt", ConsoleFormat.INSTANCE);
        model.addAttribute("problem", FormProblem.of("page", e, Set.of()));
        return "console/problem";
    }
}
