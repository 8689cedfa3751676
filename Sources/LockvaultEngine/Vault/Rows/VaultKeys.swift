import Foundation
import LockvaultCore

// The rows `lock_monitoring.record_cycle(jsonb)` reads. Their property names are the vault's
// column names, spelled as in sql/ (snake_case on purpose: `grep auto_kill_eligible` finds the
// Swift row, the record_* function that writes it and the table). record_cycle turns each row
// into the table's row type with jsonb_populate_record, so a value's JSON form is the column's
// input form. A reference to a hub is its business key, under the name of the referring
// column without `_hk` (`blocking_session` for blocking_session_hk); the SQL key functions in
// sql/functions/keys.sql hash it.

/// A hash diff: VaultHash over the attributes whose change deserves a new satellite row. It
/// is sent as bytea hex input (`\x…`) so it lands in the `hash_diff` column as the same bytes
/// SQL's `hash_key()` would give.
struct HashDiff: Encodable, Hashable, Sendable {
    let bytes: [UInt8]

    init(_ parts: [String?]) { bytes = VaultHash.hashKey(parts) }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode("\\x" + VaultHash.hex(bytes))
    }

    static func flag(_ value: Bool) -> String { value ? "t" : "f" }
}

/// Business key of blocking_session_h: a session (pid, backend_start) or a prepared transaction (gid).
struct SessionKey: Encodable, Hashable, Sendable {
    var session_kind: String
    var session_pid: Int32?
    var session_start: Date?
    var prepared_gid: String?

    static func session(pid: Int32, start: Date) -> SessionKey { SessionKey(session_kind: "session", session_pid: pid, session_start: start) }
    static func prepared(gid: String) -> SessionKey { SessionKey(session_kind: "prepared", prepared_gid: gid) }
}

/// Business key of lock_activity_h: holder x lock target x mode.
struct LockKey: Encodable, Hashable, Sendable {
    var holder_kind: String
    var session_pid: Int32?
    var session_start: Date?
    var prepared_gid: String?
    var lock_type: String
    var database_oid: UInt32?
    var lock_target_key: String
    var lock_mode: String

    init(holder: SessionKey, lock: LockRecord) {
        holder_kind = holder.session_kind
        session_pid = holder.session_pid
        session_start = holder.session_start
        prepared_gid = holder.prepared_gid
        lock_type = lock.lockType.description
        database_oid = lock.databaseOID
        lock_target_key = Self.targetKey(lock)
        lock_mode = lock.mode.description
    }

    /// The session or prepared transaction holding it.
    var holder: SessionKey {
        SessionKey(session_kind: holder_kind, session_pid: session_pid, session_start: session_start, prepared_gid: prepared_gid)
    }

    /// Canonical text of a lock's target fields: part of the lock hub's business key.
    static func targetKey(_ l: LockRecord) -> String {
        func s<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        return [l.lockType.description, s(l.databaseOID), s(l.relationOID), s(l.page), s(l.tuple), s(l.virtualXID), s(l.transactionID),
                s(l.classID), s(l.objID), s(l.objSubID)].joined(separator: "/")
    }
}

/// Business key of deadlock_event_h: one deadlock in one database.
struct DeadlockEventKey: Encodable, Hashable, Sendable {
    var database_name: String
    var event_key: String
}
