public import Foundation

/// What the Monitor decides about the monitored cluster that needs no database, as a value
/// that takes events and returns actions (the model is postgres-nio's connection state
/// machines): when it may be reconnected (``connect(at:)``), whether a failed sample keeps its
/// connection, and which gap a sample closes. The vault side is ``VaultStateMachine``.
public struct TargetStateMachine: Sendable {
    /// What to do with the target connection after a failed sample.
    public enum SampleFailedAction: Sendable, Equatable {
        /// The statement failed on a healthy connection (statement_timeout, say): keep it.
        case keepConnection
        /// Close it; the next cycle reconnects (subject to backoff).
        case reconnect
    }

    public private(set) var gaps: ObservationGaps
    public private(set) var schedule: ReconnectSchedule
    private let random: @Sendable () -> Double

    public init(heartbeatSeconds: Double, backoff: Backoff = Backoff(), random: @escaping @Sendable () -> Double) {
        self.gaps = ObservationGaps(heartbeatSeconds: heartbeatSeconds)
        self.schedule = ReconnectSchedule(backoff: backoff)
        self.random = random
    }

    /// A cycle-summary row is written at least this often: a longer silence is downtime.
    public var heartbeatSeconds: Double {
        get { gaps.heartbeatSeconds }
        set { gaps.heartbeatSeconds = newValue }
    }

    public func connect(at now: ContinuousClock.Instant) -> ConnectAction {
        schedule.connectAction(at: now)
    }

    /// Connecting to the target (or checking the new connection) failed.
    public mutating func connectFailed(at now: ContinuousClock.Instant) {
        schedule.failed(at: now, random: random())
    }

    /// The target could not be sampled at `now` (wall clock). `facts` are those of the
    /// PostgreSQL error, nil for any other failure; `connectionHealthy` is whether the
    /// connection still answers.
    public mutating func sampleFailed(_ failure: MonitorFailure, facts: PostgresFailureFacts?, connectionHealthy: Bool, at now: Date) -> SampleFailedAction {
        gaps.targetLost(reason: failure.message, at: now)
        let statementFailed = facts.map { $0.stage == .statement && !$0.connectionLost } ?? false
        return statementFailed && connectionHealthy ? .keepConnection : .reconnect
    }

    /// True on the first sample of this process: ask the vault for its last cycle of this cluster.
    public var wantsLastRecordedCycle: Bool { gaps.wantsLastRecordedCycle }

    /// A sample was taken at `capturedAt`: the target answers again. Returns the gap this
    /// sample ends (an outage, or the daemon's own downtime), to record with its cycle.
    public mutating func sampled(at capturedAt: Date, lastRecordedCycle: Date? = nil) -> ObservationGap? {
        schedule.succeeded()
        return gaps.sampled(at: capturedAt, lastRecordedCycle: lastRecordedCycle)
    }
}
