import Foundation
import LockvaultCore
import PostgresClient

/// The JSON shapes `SnapshotQuery` returns; decoded here, mapped to LockvaultCore values by
/// `SnapshotReader`. Keys are the SQL column names.
struct BackendRow: Decodable {
    var pid: Int32
    var backend_start: String?
    var backend_type: String?
    var datname: String?
    var usename: String?
    var application_name: String?
    var client_addr: String?
    var state: String?
    var xact_start: String?
    var query_start: String?
    var state_change: String?
    var wait_event_type: String?
    var wait_event: String?
    var query: String?
    var query_id: String?
    var leader_pid: Int32?
    var is_superuser: Bool?
    var blocked_by: [Int32]?
}

struct LockRow: Decodable {
    var locktype: String
    var database: UInt32?
    var relation: UInt32?
    var page: Int32?
    var tuple: Int16?
    var virtualxid: String?
    var transactionid: String?
    var classid: UInt32?
    var objid: UInt32?
    var objsubid: Int16?
    var virtualtransaction: String?
    var pid: Int32?
    var mode: String
    var granted: Bool
    var fastpath: Bool
    var waitstart: String?
    var database_name: String?
    var relation_name: String?
}

/// `[pid, backend_start, query_start, wait_event, group]` of a backend waiting for a lock
/// (`group`: its lock group's leader, itself when it has none).
struct WaitRow: Decodable {
    var sighting: SamplerMemory.WaitSighting
    var group: Int32

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        let pid = try c.decode(Int32.self)
        sighting = SamplerMemory.WaitSighting(pid: pid, backendStart: SnapshotJSON.date(try c.decodeIfPresent(String.self)),
                                              queryStart: SnapshotJSON.date(try c.decodeIfPresent(String.self)), waitEvent: try c.decodeIfPresent(String.self))
        group = c.isAtEnd ? pid : try c.decodeIfPresent(Int32.self) ?? pid
    }
}

/// `[pid, backend_start, xact_start, state, state_change]` of a followed session (`$9`).
struct WatchedRow: Decodable {
    var session: WatchedSession

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        let pid = try c.decode(Int32.self)
        let start = SnapshotJSON.date(try c.decodeIfPresent(String.self))
        let xact = SnapshotJSON.date(try c.decodeIfPresent(String.self))
        let state = BackendState(try c.decodeIfPresent(String.self) ?? "")
        session = WatchedSession(pid: pid, backendStart: start, transactionStart: xact, state: state,
                                 stateChange: SnapshotJSON.date(try c.decodeIfPresent(String.self)))
    }
}

/// `[pid, fingerprint]` of a long transaction whose locks were read in full.
struct LongReadRow: Decodable {
    var pid: Int32
    var fingerprint: String?

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        pid = try c.decode(Int32.self)
        fingerprint = try c.decodeIfPresent(String.self)
    }
}

struct PreparedRow: Decodable {
    var gid: String
    var transaction: String
    var owner: String
    var database: String
    var prepared: String
}

enum SnapshotJSON {
    static func decode<T: Decodable>(_ type: T.Type, from text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// `to_json(timestamptz)` text, e.g. `2026-11-23T03:21:08.803157+00:00`.
    static func date(_ text: String?) -> Date? {
        text.flatMap(PostgresTimestamp.parse)
    }
}

/// `[pid, datname, backend_start]` of a session (new since the previous capture, or all in a
/// lock-table cycle).
struct SessionDatabaseRow: Decodable {
    var pid: Int32
    var database: String
    var backendStart: Date?

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        pid = try c.decode(Int32.self)
        database = try c.decode(String.self)
        backendStart = try c.decodeIfPresent(String.self).flatMap(SnapshotJSON.date)
    }
}

/// `[pid, [blocker, …]]`: `pg_blocking_pids()` of a new long wait's lock group (`pid`, one of its
/// waiting members; `group`, its leader), asked in the statement (the blocking_pids way).
struct AnsweredRow: Decodable {
    var pid: Int32
    var group: Int32
    var blockers: [Int32]

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        pid = try c.decode(Int32.self)
        group = try c.decode(Int32.self)
        blockers = try c.decodeIfPresent([Int32].self) ?? []
    }
}

/// `[pid, count]`: how many granted locks a session holds whose locks the statement returned
/// only the strongest of.
struct HeldCountRow: Decodable {
    var pid: Int32
    var count: Int

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        pid = try c.decode(Int32.self)
        count = try c.decode(Int.self)
    }
}
