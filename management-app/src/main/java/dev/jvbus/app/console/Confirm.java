package dev.jvbus.app.console;

import dev.jvbus.app.service.OperationRefused;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Set;
import java.util.function.Supplier;
import org.springframework.ui.Model;
import org.springframework.web.servlet.mvc.support.RedirectAttributes;

/**
 * A confirmation page for what cannot be undone (unplug, delete): a GET shows what will happen and one
 * button that posts; the post does it and redirects. Works the same with or without JavaScript.
 */
final class Confirm {
    private Confirm() { }

    static String page(Model model, String title, String consequence, String action, String button, String back) {
        model.addAttribute("title", title);
        model.addAttribute("consequence", consequence);
        model.addAttribute("action", action);
        model.addAttribute("button", button);
        model.addAttribute("back", back);
        return "console/confirm";
    }

    /** Does the confirmed change; refused, the confirmation page again with the problem on it. */
    static String act(Model model, HttpServletResponse res, RedirectAttributes flash, String then, Supplier<String> change,
                      Supplier<String> pageAgain) {
        try {
            flash.addFlashAttribute("notice", change.get());
            return "redirect:" + then;
        } catch (OperationRefused e) {
            res.setStatus(e.type().status());
            model.addAttribute("problem", FormProblem.of("confirm", e, Set.of()));
            try {
                return pageAgain.get();
            } catch (OperationRefused gone) {
                return ConsoleAdvice.problemPage(model, res, gone);
            }
        }
    }
}
