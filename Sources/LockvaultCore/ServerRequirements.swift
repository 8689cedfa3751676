/// What lockvault needs from a PostgreSQL server it monitors.
///
/// PostgreSQL 13 is the oldest version the snapshot statement is written for (`leader_pid` in
/// `pg_stat_activity`, `pg_blocking_pids()` semantics, `pg_control_system()`); 14 adds
/// `pg_locks.waitstart`, which is read when present. Older servers are refused with a message
/// instead of failing later on a missing column.
public enum ServerRequirements {
    /// `server_version_num` of PostgreSQL 13.0.
    public static let minimumServerVersionNum = 130000
    /// The oldest major version, as help texts and messages name it: `13`.
    public static let minimumMajorVersion = minimumServerVersionNum / 10000
    /// `server_version_num` of PostgreSQL 14.0, the first with `pg_locks.waitstart`.
    public static let waitStartServerVersionNum = 140000

    /// Why a server of this `server_version_num` can't be monitored; nil when it can.
    public static func unsupportedReason(serverVersionNum: Int) -> String? {
        guard serverVersionNum < minimumServerVersionNum else { return nil }
        return "PostgreSQL \(versionName(serverVersionNum)) (server_version_num \(serverVersionNum)) is not supported: lockvault needs PostgreSQL \(minimumMajorVersion) or newer"
    }

    /// A change in PostgreSQL that lockvault handles, from the `server_version_num` it came with.
    public struct Difference: Sendable, Equatable {
        public let since: Int
        public let what: String
    }

    /// What differs between the supported major versions, for lockvault (docs/operations.md,
    /// "PostgreSQL versions"), oldest first.
    public static let differences: [Difference] = [
        Difference(since: 140000, what: "pg_locks.waitstart: wait times are read from it (on 13 they are estimated from state_change)"),
        Difference(since: 160000, what: "CREATEROLE: granting a role one did not create needs ADMIN OPTION on it (lockvault migrate prints the GRANT instead)"),
        Difference(since: 170000, what: "MAINTAIN: lock_writer_role may VACUUM the vault's tables after retention (before 17 only their owner may)"),
    ]

    /// The differences that apply to a server of this `server_version_num`.
    public static func differences(serverVersionNum: Int) -> [Difference] {
        differences.filter { serverVersionNum >= $0.since }
    }

    /// The major versions every test, the live ones included, runs on in CI. 13 and 14 are
    /// accepted but untested: no build of them runs on the CI machine (Debian 12 ships 15; the
    /// PyPI server wheels start at 16).
    public static let testedMajorVersions = [15, 16, 17, 18]

    /// Whether CI runs the whole suite on this server's major version.
    public static func isTested(serverVersionNum: Int) -> Bool {
        testedMajorVersions.contains(serverVersionNum / 10000)
    }

    /// `150018` → `15.18`, `120005` → `12.5`, `90624` → `9.6.24`.
    public static func versionName(_ num: Int) -> String {
        if num >= 100000 { return "\(num / 10000).\(num % 10000)" }
        return "\(num / 10000).\(num / 100 % 100).\(num % 100)"
    }
}
