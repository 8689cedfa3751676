public import Foundation
import LockvaultCore
public import PostgresClient

/// The vault side of a cycle: the statement that records one cycle document, in its own
/// transaction (what the Monitor runs for every buffered record).
public enum CycleWriter {
    /// Writes one cycle document (`CycleRecord.encoded()`); replaying the same one changes nothing.
    /// Returns the last_cycle_at of the vault's current summary row for the cluster, as
    /// record_cycle answers it (what ``VaultChanges`` times the next heartbeat from).
    @discardableResult
    public static func record(_ document: String, on conn: PostgresConnection) throws -> Date? {
        let result = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)::text AS stats", [document]) }
        guard let text = try? result.first?.decode("stats", as: String.self),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let epoch = (object["summary_at"] as? NSNumber)?.doubleValue else { return nil }
        return Date(timeIntervalSince1970: epoch)
    }
}

/// A sampled cycle as the daemon records it, kept so that it can be written again under another
/// cluster's identity. For tools that replay real cycles through the daemon's own writer
/// (bench/: the fleet simulation writes hundreds of clusters' cycles into one vault this way).
public struct RecordedCycle: Sendable {
    var record: CycleRecord

    /// The cycle the daemon would record for `outcome` (nil when nothing was sampled).
    public init?(_ outcome: CycleOutcome, clusterName: String, recordSource: String,
                 killThresholdSeconds: Double = 300, heartbeatSeconds: Double = 60) {
        guard let snapshot = outcome.snapshot else { return nil }
        record = CycleRecord(
            snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: outcome.deadlocks,
            decisions: outcome.decisions.map { $0.record(decidedBy: "bench", at: snapshot.capturedAt) },
            killRule: outcome.rulings, killThresholdSeconds: killThresholdSeconds, clusterName: clusterName, recordSource: recordSource,
            cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: heartbeatSeconds, gap: nil)
    }

    /// The same cycle as cluster `systemIdentifier` would record it at `capturedAt`. Its
    /// deadlocks get `eventSuffix` on their event keys, so that a replayed deadlock is a new one.
    public func replayed(systemIdentifier: String, clusterName: String, recordSource: String, capturedAt: Date, eventSuffix: String) -> RecordedCycle {
        var copy = self
        copy.record.system_identifier = systemIdentifier
        copy.record.record_source = recordSource
        copy.record.captured_at = capturedAt
        copy.record.summary.cluster_name = clusterName
        for i in copy.record.deadlocks.indices { copy.record.deadlocks[i].deadlock_event.event_key += eventSuffix }
        for i in copy.record.deadlock_participants.indices { copy.record.deadlock_participants[i].deadlock_event.event_key += eventSuffix }
        return copy
    }

    /// The whole document (what a first write, or a write after a failure, sends).
    public func document() throws -> String { try record.document(carrying: nil) }
}

/// Writes one cluster's cycles the way the daemon's Monitor does (Monitor.flush, without its
/// buffer and spool): only what changed since the last successful write (``VaultChanges``), and
/// no call at all when nothing changed and no heartbeat is due.
public struct ChangeOnlyCycleWriter: Sendable {
    private var changes: VaultChanges<VaultRowKey>

    public init(heartbeatSeconds: Double = 60) {
        changes = VaultChanges(heartbeatSeconds: heartbeatSeconds)
    }

    /// Writes what of `cycle` the vault doesn't hold yet. Returns false when that was nothing
    /// (no call was made). After a failure the next write is a whole one.
    public mutating func write(_ cycle: RecordedCycle, on conn: PostgresConnection) throws -> Bool {
        let state = cycle.record.changeState()
        let plan = changes.plan(state)
        if plan == .skip { return false }
        do {
            let summaryAt = try CycleWriter.record(try CycleDocument(cycle.record).document(plan, carrying: nil), on: conn)
            changes.written(state, summaryAt: summaryAt)
        } catch {
            changes.forget()
            throw error
        }
        return true
    }
}
