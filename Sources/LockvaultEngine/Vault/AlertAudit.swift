public import Foundation
public import LockvaultCore
public import PostgresClient

/// How one alert fared at one sink: what the journal, the metrics and the vault record.
public struct AlertDeliveryRecord: Sendable, Hashable {
    public enum Outcome: String, Sendable {
        case delivered, failed, dropped
    }

    public var alert: Alert
    public var sink: String
    public var outcome: Outcome
    /// Attempts made (0 when dropped).
    public var attempts: Int
    /// The last attempt's error (nil when delivered).
    public var error: String?
    public var finishedAt: Date

    public init(alert: Alert, sink: String, outcome: Outcome, attempts: Int, error: String?, finishedAt: Date) {
        self.alert = alert
        self.sink = sink
        self.outcome = outcome
        self.attempts = attempts
        self.error = error
        self.finishedAt = finishedAt
    }
}

/// Writes alerts and their delivery outcomes into `alert_h` / `alert_event_s` /
/// `alert_delivery_s`. Idempotent (a replay after a failed commit inserts nothing twice), and
/// all-or-nothing per call, so the caller can keep its queue and retry after a vault outage.
public enum AlertAudit {
    public static func write(alerts: [(Alert, systemIdentifier: String)], deliveries: [AlertDeliveryRecord], recordSource: String,
                             on conn: PostgresConnection) throws {
        guard !alerts.isEmpty || !deliveries.isEmpty else { return }
        try conn.transaction { tx in
            // The hub lock, shared, before any table lock (sql/functions/hub_lock.sql): retention
            // removes an incident's hub (alert_h) only while it holds the lock exclusively, so it
            // never removes one this transaction is writing an event for (the events have no
            // foreign key to their hub since migration 032: their days are dropped whole).
            _ = try tx.query("SELECT pg_advisory_xact_lock_shared(lock_monitoring.hub_lock_key())")
            for (alert, sysid) in alerts {
                _ = try tx.query("""
                    INSERT INTO lock_monitoring.alert_h (alert_hk, alert_id, cluster_hk, load_date, record_source)
                    VALUES (lock_monitoring.hash_key($1), $1, lock_monitoring.hash_key($2), now(), $3) ON CONFLICT DO NOTHING
                    """, [alert.alertID, sysid, recordSource])
                _ = try tx.query("""
                    INSERT INTO lock_monitoring.alert_event_s (alert_hk, event_at, kind, load_date, record_source, severity, previous_severity, summary, payload)
                    VALUES (lock_monitoring.hash_key($1), $2, $3, now(), $4, $5, $6, $7, $8::jsonb) ON CONFLICT DO NOTHING
                    """, [alert.alertID, alert.at, alert.kind.rawValue, recordSource, alert.severity.rawValue, alert.previousSeverity?.rawValue,
                          alert.summary, alert.json()])
            }
            for d in deliveries {
                _ = try tx.query("""
                    INSERT INTO lock_monitoring.alert_delivery_s (alert_hk, event_at, kind, sink, load_date, record_source, outcome, attempts, error, finished_at)
                    VALUES (lock_monitoring.hash_key($1), $2, $3, $4, now(), $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
                    """, [d.alert.alertID, d.alert.at, d.alert.kind.rawValue, d.sink, recordSource, d.outcome.rawValue, d.attempts, d.error, d.finishedAt])
            }
        }
    }
}
