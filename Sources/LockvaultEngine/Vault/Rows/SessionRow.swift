import Foundation
import LockvaultCore

/// blocking_session_h (sql/functions/record_sessions.sql): every session or prepared
/// transaction named anywhere in the cycle, so other rows can refer to it.
struct SessionRow: Encodable, Sendable {
    var blocking_session: SessionKey
    /// For the hub's tenant.
    var database_name: String?
}

/// Every session and prepared transaction the cycle names, in first-named order, with the
/// database its hub row's tenant comes from.
struct NamedSessions {
    private let backends: [Int32: BackendActivity]
    /// Sessions the sampler knows but did not return as backends (idle, blocking nobody).
    private let starts: [Int32: Date]
    private let databases: [Int32: String]
    private var order: [SessionKey] = []
    private var database: [SessionKey: String?] = [:]

    init(_ snapshot: LockSnapshot) {
        backends = Dictionary(snapshot.backends.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        starts = snapshot.sessionStarts
        databases = snapshot.sessionDatabases
    }

    func backend(_ pid: Int32) -> BackendActivity? { backends[pid] }

    /// A session sampled this cycle, or only counted by it (a deadlock's participants are
    /// usually idle by then); nil when the cluster has no such session or it has no backend_start.
    mutating func session(pid: Int32) -> SessionKey? {
        if let b = backends[pid], let start = b.backendStart {
            let key = SessionKey.session(pid: pid, start: start)
            note(key, database: b.database)
            return key
        }
        guard let start = starts[pid] else { return nil }
        let key = SessionKey.session(pid: pid, start: start)
        note(key, database: databases[pid])
        return key
    }

    /// A prepared transaction; the latest database named for it wins.
    mutating func prepared(_ gid: String, database: String?) -> SessionKey {
        let key = SessionKey.prepared(gid: gid)
        note(key, database: database)
        return key
    }

    /// A session a decision is about (it may have ended since it was sampled).
    mutating func decided(pid: Int32, start: Date, database: String?) -> SessionKey {
        let key = SessionKey.session(pid: pid, start: start)
        if self.database[key] == nil { note(key, database: database) }
        return key
    }

    private mutating func note(_ key: SessionKey, database: String?) {
        if self.database[key] == nil { order.append(key) }
        self.database[key] = .some(database)
    }

    var rows: [SessionRow] { order.map { SessionRow(blocking_session: $0, database_name: database[$0] ?? nil) } }
}
