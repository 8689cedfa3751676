public import LockvaultCore
import Foundation

/// What one cycle found and did.
public struct CycleOutcome: Sendable {
    public var snapshot: LockSnapshot?
    public var assessments: [BlockerAssessment]
    public var forest: [BlockingTree]
    public var deadlocks: [DeadlockEvent]
    /// The resolver's decisions this cycle about its candidates, with what happened when acted on.
    public var decisions: [ExecutedDecision] = []
    /// The kill rule's answer for every blocker (worst first), resolver on or off: what the
    /// vault records as auto_kill_eligible and auto_kill_reason.
    public var rulings: [ResolveDecision] = []
    /// What happened to blocking episodes this cycle (``EpisodeTracker``): started, joined, ended.
    public var episodeEvents: [EpisodeEvent] = []
    /// The episodes open, awaiting a deadlock's confirmation or ended recently: what a cleared
    /// alert names its episode from.
    public var episodes: [Episode] = []
    /// Episodes open after this cycle.
    public var openEpisodes = 0
    /// The alerts this cycle raised (``CycleAlerting``), recorded with the cycle.
    public var alerts: [Alert] = []
    /// The sinks' outcomes that finished since the last sampled cycle, recorded with this one.
    public var alertDeliveries: [AlertDeliveryRecord] = []
    public var cycleMilliseconds: Double
    /// Cycles waiting for the vault (0 when everything is written).
    public var pendingWrites: Int
    /// Cycle records dropped, oldest first, since the monitor started because the buffer was
    /// full while the vault was unreachable (each drop is recorded as a gap).
    public var droppedRecords: Int = 0
    /// Why the target could not be sampled (the cycle saw nothing).
    public var targetFailure: MonitorFailure?
    /// Why the vault could not be written (the record is buffered).
    public var vaultFailure: MonitorFailure?

    /// The target could not be sampled (the cycle saw nothing).
    public var targetError: String? { targetFailure?.message }
    /// The vault could not be written (the record is buffered).
    public var vaultError: String? { vaultFailure?.message }

    public var succeeded: Bool { targetError == nil && vaultError == nil }
    public var criticalCount: Int { assessments.filter { $0.severity == .critical }.count }

    /// `ok: 2 blockers (1 CRITICAL), 0 deadlocks, cycle 3.1 ms`
    public var statusLine: String {
        if let targetError { return "degraded: cannot sample target (\(targetError))" }
        let base = "\(assessments.count) blocker\(assessments.count == 1 ? "" : "s") (\(criticalCount) CRITICAL), \(deadlocks.count) deadlock\(deadlocks.count == 1 ? "" : "s"), cycle \(String(format: "%.1f", cycleMilliseconds)) ms"
        if let vaultError { return "degraded: \(base); vault unavailable, \(pendingWrites) cycles buffered (\(vaultError))" }
        return "ok: \(base)"
    }
}
