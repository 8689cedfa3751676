import ArgumentParser
import LockvaultCore
import LockvaultEngine

extension MonitorFailure {
    /// Prints the failure as the command's one message on standard error and returns the exit
    /// code for its kind (``LockvaultExit/code(for:)-(MonitorFailure.Kind)``).
    func exit(_ verb: String) -> ExitCode {
        printError("lockvault \(verb): \(message)")
        return ExitCode(LockvaultExit.code(for: kind))
    }
}
