import ArgumentParser
import LockvaultCore
import LockvaultEngine

extension MonitorFailure {
    /// Prints the failure as the command's one message on standard error and returns the exit
    /// code for its ``MonitorFailure/Code`` (``LockvaultExit/code(for:)-(MonitorFailure.Code)``).
    func exit(_ verb: String) -> ExitCode {
        printError("lockvault \(verb): \(message)")
        return ExitCode(LockvaultExit.code(for: code))
    }
}
