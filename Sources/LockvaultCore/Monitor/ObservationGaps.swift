public import Foundation

/// Which periods of the monitored cluster nobody observed, so the vault can say "nothing is
/// known here" rather than "nothing happened here".
///
/// Two kinds: the target was lost (from the last sample before it to the first one after), and
/// — on the first cycle of a process — lockvault itself was not running (from the vault's last
/// cycle of this cluster, when that is more than a heartbeat ago). Wall-clock times come from
/// the samples; a gap across a clock that went back never ends before it starts.
public struct ObservationGaps: Sendable {
    /// A cycle-summary row is written at least this often: a longer silence in the vault is downtime.
    public var heartbeatSeconds: Double
    /// The last sample of this process.
    public private(set) var lastObserved: Date?
    private var unobserved: (since: Date, reason: String)?

    public init(heartbeatSeconds: Double) {
        self.heartbeatSeconds = heartbeatSeconds
    }

    /// True on the first sample of this process with no outage pending: the caller should ask
    /// the vault when it last recorded this cluster and pass it to ``sampled(at:lastRecordedCycle:)``.
    public var wantsLastRecordedCycle: Bool { lastObserved == nil && unobserved == nil }

    /// The target could not be sampled at `now`: the unobserved period starts at the last
    /// sample (or now, if there was none), and only the first failure of an outage counts.
    public mutating func targetLost(reason: String, at now: Date) {
        if unobserved == nil { unobserved = (lastObserved ?? now, "target unavailable: \(reason)") }
    }

    /// A sample was taken at `capturedAt`; returns the gap it closes, if any. `lastRecordedCycle`
    /// is the vault's answer to ``wantsLastRecordedCycle`` (nil: not asked, never, or unknown —
    /// then no downtime is inferred: better none than a wrong one).
    public mutating func sampled(at capturedAt: Date, lastRecordedCycle: Date? = nil) -> ObservationGap? {
        if lastObserved == nil, unobserved == nil, let last = lastRecordedCycle, capturedAt.timeIntervalSince(last) > heartbeatSeconds + 5 {
            unobserved = (last, "lockvault was not recording (stopped, crashed or not yet started); the gap starts at the last recorded cycle, which may be up to \(Int(heartbeatSeconds)) s before it stopped")
        }
        lastObserved = capturedAt
        guard let (since, reason) = unobserved else { return nil }
        unobserved = nil
        return ObservationGap(start: min(since, capturedAt), end: capturedAt, reason: reason)
    }
}

/// A nothing-observed period, written with the cycle record that ends it.
public struct ObservationGap: Sendable, Hashable, Codable {
    public var start: Date
    public var end: Date
    public var reason: String
}
