import LockvaultCore
public import PostgresClient

/// The vault side of a cycle: the statement that records one cycle document, in its own
/// transaction (what the Monitor runs for every buffered record), and the document itself.
/// Public for tools that replay recorded cycles through the same writer (bench/: the fleet
/// simulation writes hundreds of clusters' cycles into one vault this way).
public enum CycleWriter {
    /// Writes one cycle document (`CycleRecord.encoded()`); replaying the same one changes nothing.
    public static func record(_ document: String, on conn: PostgresConnection) throws {
        _ = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [document]) }
    }

    /// The document the daemon writes for a sampled cycle (nil when nothing was sampled).
    public static func document(for outcome: CycleOutcome, clusterName: String, recordSource: String,
                                killThresholdSeconds: Double = 300, heartbeatSeconds: Double = 60) throws -> String? {
        guard let snapshot = outcome.snapshot else { return nil }
        let record = CycleRecord(
            snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: outcome.deadlocks,
            decisions: outcome.decisions.map { $0.record(decidedBy: "bench", at: snapshot.capturedAt) },
            killRule: outcome.rulings, killThresholdSeconds: killThresholdSeconds, clusterName: clusterName, recordSource: recordSource,
            cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: heartbeatSeconds, gap: nil)
        return try record.encoded()
    }
}
