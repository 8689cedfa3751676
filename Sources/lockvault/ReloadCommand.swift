import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `lockvault reload --pid PID`: the unit's `ExecReload=`.
///
/// Sends SIGHUP to the daemon, which re-reads its config itself (RELOADING=1 … READY=1; a bad
/// new config is rejected and the old one stays). It exists so the unit needs no external
/// `kill`: `/bin/kill` comes from procps, which a minimal Debian host doesn't have.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Ask a running lockvault daemon to reload its configuration (sends it SIGHUP).",
        discussion: """
            For systemd's ExecReload= (`lockvault reload --pid $MAINPID`). \
            \(LockvaultExit.help(success: "sent", .init(LockvaultExit.failure, "no such process"), .init(LockvaultExit.usage, "bad pid"),
                                 .init(LockvaultExit.noPermission, "not permitted")))
            """
    )

    @Option(name: .long, help: "The daemon's process id (systemd: $MAINPID).")
    var pid: Int32

    func run() throws {
        guard pid > 1 else {
            printError("lockvault reload: --pid must be a daemon's process id, not \(pid)")
            throw ExitCode(LockvaultExit.usage)
        }
        guard kill(pid, SIGHUP) == 0 else {
            let why = errno
            printError("lockvault reload: cannot signal process \(pid): \(String(cString: strerror(why)))")
            throw ExitCode(why == EPERM ? LockvaultExit.noPermission : LockvaultExit.failure)
        }
    }
}
