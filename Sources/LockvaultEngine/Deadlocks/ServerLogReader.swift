import Foundation
import Logging
import LockvaultCore
import PostgresClient

/// The server log's deadlock reports, read the way the server writes them: with its own
/// log_line_prefix and log_destination, re-read every 30 s (a reload may change them), and the
/// database names of reports that give only an OID.
struct ServerLogReader {
    let tailer: ServerLogTailer
    /// When the server's log_line_prefix and log_destination were last read.
    private var settingsReadAt: Date?

    init(path: String, format: ServerLogFormat?) {
        tailer = ServerLogTailer(path: path, format: format ?? ServerLogFormat(inferredFromPath: path))
    }

    /// New deadlock reports since the last call.
    mutating func read(at now: Date, target: PostgresConnection?, logger: Logger) -> [DeadlockReport] {
        if settingsReadAt.map({ now.timeIntervalSince($0) >= 30 || now < $0 }) ?? true, let conn = target {
            do {
                try readSettings(on: conn, logger: logger)
                settingsReadAt = now
            } catch {
                // The log is still read, with the prefix last known; the next cycle asks again.
                logger.warning("cannot read the server's log_line_prefix", metadata: ["error": "\(error.description)"])
            }
        }
        return tailer.poll()
    }

    private mutating func readSettings(on conn: PostgresConnection, logger: Logger) throws(PostgresError) {
        let row = try conn.query("SELECT current_setting('log_line_prefix') AS prefix, current_setting('log_destination') AS destination")[0]
        let prefix = try row.decode("prefix", as: String.self)
        if prefix != tailer.linePrefix {
            logger.info("reading the server log with the server's log_line_prefix", metadata: ["log_line_prefix": "\(prefix)"])
        }
        tailer.use(linePrefix: prefix)
        let destinations = try row.decode("destination", as: String.self).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if settingsReadAt == nil, !destinations.contains(tailer.format.rawValue) {
            logger.warning("the server does not write the configured server log format", metadata: [
                "format": "\(tailer.format.rawValue)", "log_destination": "\(destinations.joined(separator: ","))", "path": "\(tailer.path)",
            ])
        }
    }

    /// Database OID → name on the monitored cluster, for `reports` without a database name
    /// (empty when none needs it).
    static func databaseNames(for reports: [DeadlockReport], target: PostgresConnection?) -> [UInt32: String] {
        guard reports.contains(where: { $0.database == nil && $0.databaseOID != nil }), let conn = target,
              let rows = try? conn.query("SELECT oid::int8 AS oid, datname FROM pg_database") else { return [:] }
        var names: [UInt32: String] = [:]
        for row in rows {
            if let oid = try? row.decode("oid", as: Int64.self), let name = try? row.decode("datname", as: String.self) { names[UInt32(truncatingIfNeeded: oid)] = name }
        }
        return names
    }
}
