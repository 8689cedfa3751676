/// Why lockvault could not sample the monitored cluster or write its vault, in words for the
/// person who has to fix it, and whether waiting can fix it.
///
/// Every command and the daemon turn a failure into one message and one exit code (documented
/// in README and docs/operations.md). Messages never contain a password: they are built from
/// error descriptions and redacted conninfos.
public struct MonitorFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure, coarsely: what decides the exit code and whether to retry.
    /// Extensible, as postgres-nio's `PSQLError.Code`: a new code is a new static member, and a
    /// `switch` over codes has a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case unavailable, invalidConnectionString, authenticationFailed, insufficientPrivilege, unsupportedServer, vaultNotMigrated, failed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server can't be reached now (down, restarting, refusing connections, network,
        /// a lock_timeout or statement_timeout): retrying may help.
        public static let unavailable = Code(.unavailable)
        /// The connection string is malformed; nothing was attempted.
        public static let invalidConnectionString = Code(.invalidConnectionString)
        /// The server refused the credentials (wrong password, no pg_hba.conf entry, no such role).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// Connected, but the role lacks a privilege lockvault needs (pg_monitor, the vault roles).
        public static let insufficientPrivilege = Code(.insufficientPrivilege)
        /// PostgreSQL older than 14 (``ServerCapabilities/minimumMajorVersion``).
        public static let unsupportedServer = Code(.unsupportedServer)
        /// The vault has no, or an older/newer, `lock_monitoring` schema.
        public static let vaultNotMigrated = Code(.vaultNotMigrated)
        /// Anything else (an unexpected server error).
        public static let failed = Code(.failed)

        public var description: String { base.rawValue }
    }

    /// Which side failed.
    public enum Side: String, Sendable {
        case target = "the monitored cluster"
        case vault = "the vault"
    }

    public var code: Code
    /// The message for the person who has to fix it; never contains a password (it is built
    /// from error descriptions and redacted conninfos).
    public var message: String
    public var description: String { message }

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Waiting and retrying can fix it; everything else needs a person.
    public var isTransient: Bool { code == .unavailable }
}

/// What a failed PostgreSQL call tells about itself, as plain values: the adapter extracts
/// them from its error type, and every decision about them (what kind of failure, whether to
/// reconnect, whether the vault refused a record) is made here, testable without a server.
public struct PostgresFailureFacts: Sendable, Equatable {
    /// How far the call got.
    public enum Stage: Sendable, Equatable {
        /// The connection string could not be parsed; nothing was attempted.
        case conninfo
        /// The connection could not be opened.
        case connect
        /// A statement failed, or the connection broke under it.
        case statement
    }

    public var stage: Stage
    /// The server's SQLSTATE, when it sent one.
    public var sqlState: String?
    /// SQLSTATE class 28 (or what libpq said when the connection never started).
    public var isAuthenticationFailure: Bool
    /// The connection can't be used any more (broken, closed, server shutting down).
    public var connectionLost: Bool
    /// The primary message (server's or libpq's); never contains a password.
    public var message: String
    /// Code, SQLSTATE, message, detail and hint; never contains a password.
    public var description: String

    public init(stage: Stage, sqlState: String? = nil, isAuthenticationFailure: Bool = false, connectionLost: Bool = false,
                message: String, description: String? = nil) {
        self.stage = stage
        self.sqlState = sqlState
        self.isAuthenticationFailure = isAuthenticationFailure
        self.connectionLost = connectionLost
        self.message = message
        self.description = description ?? message
    }

    /// The vault refuses this record itself (data exception, integrity violation, raised by a
    /// function or trigger), as opposed to being unavailable or unwritable for us: retrying
    /// can't help, and the record must not hold back every later one.
    public var refusesRecord: Bool {
        guard stage == .statement, !connectionLost, let state = sqlState else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state == "P0001"
    }

    /// Classifies a failure talking to `side` (as `role`, when known).
    public func classify(side: MonitorFailure.Side, role: String? = nil) -> MonitorFailure {
        let who = role.map { "role \($0)" } ?? "the role"
        let state = sqlState ?? ""
        if stage == .conninfo {
            return MonitorFailure(code: .invalidConnectionString, message: "\(side.rawValue): \(message)")
        }
        if isAuthenticationFailure {
            return MonitorFailure(code: .authenticationFailed,
                                  message: "authentication to \(side.rawValue) failed: \(message) — check the user and password (DSN, PGPASSWORD, ~/.pgpass) and pg_hba.conf")
        }
        if state == "42501" {   // insufficient_privilege
            let grant = side == .target ? "GRANT pg_monitor TO \(role ?? "<role>")" : "GRANT lock_writer_role TO \(role ?? "<role>")"
            return MonitorFailure(code: .insufficientPrivilege, message: "\(who) lacks a privilege on \(side.rawValue): \(message) — \(grant)")
        }
        // invalid_schema_name, undefined_table, undefined_function
        if side == .vault, ["3F000", "42P01", "42883"].contains(state) {
            return MonitorFailure(code: .vaultNotMigrated, message: "the vault is not migrated (\(message)); run `lockvault migrate`")
        }
        if stage == .connect {
            return MonitorFailure(code: .unavailable, message: "cannot reach \(side.rawValue): \(message)")
        }
        // lock_not_available (lock_timeout), query_canceled (statement_timeout), invalid_catalog_name,
        // class 53 (insufficient resources)
        if connectionLost || ["55P03", "57014", "3D000"].contains(state) || state.hasPrefix("53") {
            return MonitorFailure(code: .unavailable, message: "\(side.rawValue) is unavailable: \(description)")
        }
        return MonitorFailure(code: .failed, message: "\(side.rawValue): \(description)")
    }
}
