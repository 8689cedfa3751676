import Foundation
import LockvaultCore
import PostgresClient

/// Names relations whose OIDs belong to another database than the monitor's.
///
/// An OID means something only in its own database, so the snapshot's own catalog can't name
/// them. This keeps one lazily opened connection per database (same session settings as the
/// monitor, so it can never block) and caches names by (database, oid); a name that can't be
/// resolved (no access, database gone, connection refused) stays nil — "unknown" — rather than
/// a guess from the wrong catalog.
final class RelationNameResolver {
    private let conninfo: String
    private let settings: SessionSettings
    private var connections: [String: PostgresConnection] = [:]
    private var failedAt: [String: Date] = [:]
    private var cache: [Key: String] = [:]
    /// When a database last refused (it is not asked again for 30 s).
    private let clock: MonitorClock

    private struct Key: Hashable { var database: String; var oid: UInt32 }

    init(conninfo: String, settings: SessionSettings, clock: MonitorClock = .system) {
        self.conninfo = conninfo
        self.settings = settings
        self.clock = clock
    }

    func resolve(_ locks: inout [LockRow], currentDatabase: String) {
        var missing: [String: Set<UInt32>] = [:]
        for lock in locks where lock.relation_name == nil {
            guard let oid = lock.relation, let db = lock.database_name, db != currentDatabase, lock.database != 0 else { continue }
            if cache[Key(database: db, oid: oid)] == nil { missing[db, default: []].insert(oid) }
        }
        for (db, oids) in missing { lookUp(db, oids: Array(oids)) }
        for i in locks.indices where locks[i].relation_name == nil {
            guard let oid = locks[i].relation, let db = locks[i].database_name else { continue }
            locks[i].relation_name = cache[Key(database: db, oid: oid)]
        }
        if cache.count > 10_000 { cache.removeAll() }  // OIDs can be reused after DROP; stay bounded
    }

    private func lookUp(_ database: String, oids: [UInt32]) {
        if let failed = failedAt[database], clock.date().timeIntervalSince(failed) < 30 { return }
        do {
            let conn: PostgresConnection
            if let existing = connections[database], !existing.isClosed {
                conn = existing
            } else {
                conn = try PostgresConnection(conninfo: conninfo, database: database, settings: settings)
                connections[database] = conn
            }
            let rows = try conn.query("""
                SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = ANY($1::oid[])
                """, [oids.map { Int64($0) }])
            for row in rows {
                cache[Key(database: database, oid: try row.decode("oid", as: UInt32.self))] = try row.decode("name", as: String.self)
            }
        } catch {
            connections[database]?.close()
            connections[database] = nil
            failedAt[database] = clock.date()
        }
    }

    func closeAll() {
        for conn in connections.values { conn.close() }
        connections.removeAll()
    }
}
