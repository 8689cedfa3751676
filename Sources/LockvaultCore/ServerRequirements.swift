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

    /// `150018` → `15.18`, `120005` → `12.5`, `90624` → `9.6.24`.
    public static func versionName(_ num: Int) -> String {
        if num >= 100000 { return "\(num / 10000).\(num % 10000)" }
        return "\(num / 10000).\(num / 100 % 100).\(num % 100)"
    }
}
