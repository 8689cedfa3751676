public import Foundation
public import LockvaultCore

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

/// alert_h + alert_event_s (sql/functions/record_alerts.sql): an alert raised in the cycle
/// whose document carries it. Keyed by (alert_id, event_at, kind): written again, nothing changes.
struct AlertEventRow: Encodable, Sendable {
    var alert_id: String
    var event_at: Date
    var kind: String
    var severity: String
    var previous_severity: String?
    var summary: String
    /// The exact JSON text the sinks received.
    var payload: String

    init(_ alert: Alert) {
        alert_id = alert.alertID
        event_at = alert.at
        kind = alert.kind.rawValue
        severity = alert.severity.rawValue
        previous_severity = alert.previousSeverity?.rawValue
        summary = alert.summary
        payload = alert.json()
    }
}

/// alert_delivery_s: what one sink made of one alert, keyed by the alert's event and the sink.
struct AlertDeliveryRow: Encodable, Sendable {
    var alert_id: String
    var event_at: Date
    var kind: String
    var sink: String
    var outcome: String
    var attempts: Int
    var error: String?
    var finished_at: Date

    init(_ d: AlertDeliveryRecord) {
        alert_id = d.alert.alertID
        event_at = d.alert.at
        kind = d.alert.kind.rawValue
        sink = d.sink
        outcome = d.outcome.rawValue
        attempts = d.attempts
        error = d.error
        finished_at = d.finishedAt
    }
}
