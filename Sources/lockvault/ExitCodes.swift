import ArgumentParser
import LockvaultCore
import LockvaultDaemon
import LockvaultEngine

/// Every exit code of every command (sysexits.h where one fits), and which failure gets which:
/// the one table. The engine and the daemon only say what went wrong (``MonitorFailure/Code``,
/// ``StartupError/Code``, ``MigrationError``); this decides the number. Documented in the
/// README's command table and docs/operations.md "Exit codes" — keep the three in step.
enum LockvaultExit {
    /// An error no other code describes (`status`: stale or nothing recorded; `migrate`: a
    /// migration failed and was rolled back; `doctor`: a check failed; `blocking --at`: lockvault
    /// was not watching at that moment).
    static let failure: Int32 = 1
    /// `resolve`: there are blockers it would end (dry run) or did end.
    static let wouldAct: Int32 = 2
    /// A malformed DSN on the command line (nothing was attempted), or an option that is wrong:
    /// a time or duration that doesn't parse, `--from` later than `--to`, an episode id the vault
    /// doesn't have, a moment before the retained history.
    static let usage: Int32 = 64
    /// The vault is not migrated, or an applied migration was changed.
    static let dataError: Int32 = 65
    /// `episode --svg`: the picture's file cannot be written.
    static let cannotCreate: Int32 = 73
    /// A server can't be reached now (or `run` can't bind the metrics address).
    static let unavailable: Int32 = 69
    /// PostgreSQL older than 14 (``ServerCapabilities/minimumMajorVersion``).
    static let unsupportedServer: Int32 = 76
    /// Authentication failed, or a privilege is missing (pg_monitor, the vault roles); `migrate`:
    /// a vault role is missing and the migrating role may not create it (nothing was changed;
    /// the statements to run are on standard output).
    static let noPermission: Int32 = 77
    /// Invalid configuration (a malformed DSN in the config file included).
    static let config: Int32 = 78

    static func code(for code: MonitorFailure.Code) -> Int32 {
        switch code {
        case .unavailable: unavailable
        case .invalidConnectionString: usage
        case .authenticationFailed, .insufficientPrivilege: noPermission
        case .unsupportedServer: unsupportedServer
        case .vaultNotMigrated: dataError
        default: failure   // .failed, and any code added later until it is given a number here
        }
    }

    /// `lockvault run` before READY.
    static func code(for error: StartupError) -> Int32 {
        if error.code == .invalidConfiguration { return config }
        return error.failure.map { code(for: $0) } ?? failure
    }

    /// `lockvault migrate`.
    static func code(for error: MigrationError) -> Int32 {
        switch error.code {
        case .migrationFailed: failure
        case .rolesNotPermitted: noPermission
        default: dataError
        }
    }
}

/// One entry of a command's "Exit codes:" help: a code from ``LockvaultExit`` and what it means
/// for that command. The entries several commands share are here, so each is worded once.
struct ExitMeaning {
    let code: Int32
    let meaning: String

    init(_ code: Int32, _ meaning: String) {
        self.code = code
        self.meaning = meaning
    }

    static let malformedDSN = ExitMeaning(LockvaultExit.usage, "malformed DSN")
    static let cannotConnect = ExitMeaning(LockvaultExit.unavailable, "cannot connect")
    static let notMigrated = ExitMeaning(LockvaultExit.dataError, "the vault is not migrated")
    static let unsupportedServer = ExitMeaning(LockvaultExit.unsupportedServer, "PostgreSQL older than \(ServerCapabilities.minimumMajorVersion)")
    static let authenticationFailed = ExitMeaning(LockvaultExit.noPermission, "authentication failed")
    static let invalidConfiguration = ExitMeaning(LockvaultExit.config, "invalid configuration")
}

extension LockvaultExit {
    /// A command's exit codes as its help shows them, lowest first: "Exit codes: 0 connected;
    /// 64 malformed DSN; …". Success is always 0 and so needs only its meaning.
    static func help(success: String, _ failures: ExitMeaning...) -> String {
        let entries = [ExitMeaning(ExitCode.success.rawValue, success)] + failures.sorted { $0.code < $1.code }
        return "Exit codes: " + entries.map { "\($0.code) \($0.meaning)" }.joined(separator: "; ") + "."
    }
}
