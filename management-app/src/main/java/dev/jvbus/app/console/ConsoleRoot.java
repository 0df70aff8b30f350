package dev.jvbus.app.console;

import org.springframework.stereotype.Controller;
import org.springframework.web.bind.annotation.GetMapping;

/** A person who opens the app's address lands on the console (which asks them to log in). */
@Controller
class ConsoleRoot {
    @GetMapping("/")
    String root() {
        return "redirect:/console";
    }
}
