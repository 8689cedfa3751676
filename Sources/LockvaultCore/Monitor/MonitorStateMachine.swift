public import Foundation

/// The limits the state machine works within (from the configuration; may change on reload).
public struct MonitorLimits: Sendable, Equatable {
    /// Cycle records kept while the vault is unreachable; beyond it the oldest are dropped and
    /// a gap is recorded.
    public var maxBufferedCycles: Int
    /// How long one flush may spend writing buffered records; the rest goes next cycle, so a
    /// long backlog never stalls sampling.
    public var flushBudget: Duration
    /// A cycle-summary row is written at least this often (downtime is a longer silence).
    public var heartbeatSeconds: Double

    public init(maxBufferedCycles: Int = 3600, flushBudget: Duration = .milliseconds(500), heartbeatSeconds: Double = 60) {
        self.maxBufferedCycles = maxBufferedCycles
        self.flushBudget = flushBudget
        self.heartbeatSeconds = heartbeatSeconds
    }
}

/// Time and chance, injected: the state machine never reads a clock or draws a random number
/// itself, so tests can run a five-minute outage in microseconds and jump the clock at will.
public struct MonitorClock: Sendable {
    /// Monotonic time, for backoff and the flush budget.
    public var now: @Sendable () -> ContinuousClock.Instant
    /// Wall-clock time, for a gap that starts before any sample was taken.
    public var date: @Sendable () -> Date
    /// Uniform in [0, 1): the jitter of reconnect backoff.
    public var random: @Sendable () -> Double

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant, date: @escaping @Sendable () -> Date,
                random: @escaping @Sendable () -> Double) {
        self.now = now
        self.date = date
        self.random = random
    }

    public static let system = MonitorClock(now: { .now }, date: { Date() }, random: { Double.random(in: 0..<1) })
}

/// Everything the Monitor decides that needs no database, as a value that takes events and
/// returns actions (the model is postgres-nio's connection state machines).
///
/// - The monitored cluster: when it may be reconnected (``targetConnect(at:)``), whether a
///   failed sample keeps its connection, and which gap a sample closes.
/// - The vault: the bounded buffer of cycle records, what to write next and with which gap
///   (``VaultAction/write(_:gap:capturedAt:)``), when to back off, when the flush budget is spent.
///
/// The cycle record is opaque (`Record`): the Monitor attaches the gap an action names to it.
public struct MonitorStateMachine<Record> {
    /// Whether a connection may be opened now.
    public enum ConnectAction: Sendable, Equatable {
        case connect
        /// Backing off: no attempt before `until` (drawn under `ceiling`).
        case wait(until: ContinuousClock.Instant, ceiling: Duration)
    }

    /// What to do with the target connection after a failed sample.
    public enum TargetAction: Sendable, Equatable {
        /// The statement failed on a healthy connection (statement_timeout, say): keep it.
        case keepConnection
        /// Close it; the next cycle reconnects (subject to backoff).
        case reconnect
    }

    /// What the Monitor does next for the vault.
    public enum VaultAction {
        /// Write `record` in a transaction of its own, carrying `gap`; then report
        /// ``writeSucceeded(at:)``, ``writeRefused(reason:at:)`` or ``writeFailed(_:facts:at:)``.
        case write(Record, gap: CycleGap?, capturedAt: Date)
        /// Everything buffered is written.
        case done
        /// The flush budget is spent; `pending` records wait for the next cycle.
        case later(pending: Int)
        /// The vault is unavailable: no attempt before `until`. With `reconnect`, close the
        /// vault connection first.
        case backOff(until: ContinuousClock.Instant, failure: MonitorFailure, reconnect: Bool)
    }

    public var limits: MonitorLimits {
        didSet {
            buffer.limit = limits.maxBufferedCycles
            gaps.heartbeatSeconds = limits.heartbeatSeconds
        }
    }
    public private(set) var gaps: ObservationGaps
    public private(set) var buffer: VaultBuffer<Record>
    public private(set) var target: ReconnectSchedule
    public private(set) var vault: ReconnectSchedule
    /// Why the vault failed last; nil once a flush got through.
    public private(set) var lastVaultFailure: MonitorFailure?
    private var flushDeadline: ContinuousClock.Instant?
    private let random: @Sendable () -> Double

    public init(limits: MonitorLimits, backoff: Backoff = Backoff(), random: @escaping @Sendable () -> Double) {
        self.limits = limits
        self.gaps = ObservationGaps(heartbeatSeconds: limits.heartbeatSeconds)
        self.buffer = VaultBuffer(limit: limits.maxBufferedCycles)
        self.target = ReconnectSchedule(backoff: backoff)
        self.vault = ReconnectSchedule(backoff: backoff)
        self.random = random
    }

    // MARK: The monitored cluster

    public func targetConnect(at now: ContinuousClock.Instant) -> ConnectAction {
        schedule(target, at: now)
    }

    /// Connecting to the target (or checking the new connection) failed.
    public mutating func targetConnectFailed(at now: ContinuousClock.Instant) {
        target.failed(at: now, random: random())
    }

    /// The target could not be sampled at `now` (wall clock). `facts` are those of the
    /// PostgreSQL error, nil for any other failure; `connectionHealthy` is whether the
    /// connection still answers.
    public mutating func targetLost(_ failure: MonitorFailure, facts: PostgresFailureFacts?, connectionHealthy: Bool, at now: Date) -> TargetAction {
        gaps.targetLost(reason: failure.message, at: now)
        let statementFailed = facts.map { $0.stage == .statement && !$0.connectionLost } ?? false
        return statementFailed && connectionHealthy ? .keepConnection : .reconnect
    }

    /// True on the first sample of this process: ask the vault for its last cycle of this cluster.
    public var wantsLastRecordedCycle: Bool { gaps.wantsLastRecordedCycle }

    /// A sample was taken at `capturedAt`: the target answers again. Returns the gap this
    /// sample ends (an outage, or the daemon's own downtime), to record with its cycle.
    public mutating func cycleSampled(at capturedAt: Date, lastRecordedCycle: Date? = nil) -> CycleGap? {
        target.succeeded()
        return gaps.sampled(at: capturedAt, lastRecordedCycle: lastRecordedCycle)
    }

    // MARK: The vault

    /// A cycle's record (and the gap it reports itself) joins the buffer. Returns how many of
    /// the oldest records were dropped to stay within ``MonitorLimits/maxBufferedCycles``.
    @discardableResult
    public mutating func cycleRecorded(_ record: Record, capturedAt: Date, gap: CycleGap?) -> Int {
        buffer.append(record, capturedAt: capturedAt, gap: gap)
    }

    /// Cycle records spooled before a restart: written first, in their order.
    public mutating func restore(_ records: [PendingRecord<Record>]) {
        buffer.restore(records)
    }

    /// A cycle's tick (or a drain at shutdown): what to write, if anything may be written now.
    public mutating func flush(at now: ContinuousClock.Instant) -> VaultAction {
        guard !buffer.isEmpty else { return .done }
        if !vault.isDue(at: now), let failure = lastVaultFailure, let until = vault.nextAttempt {
            return .backOff(until: until, failure: failure, reconnect: false)
        }
        flushDeadline = now + max(.milliseconds(1), limits.flushBudget)
        return next(at: now)
    }

    public func vaultConnect(at now: ContinuousClock.Instant) -> ConnectAction {
        schedule(vault, at: now)
    }

    /// Connecting to the vault (or checking the new connection) failed.
    public mutating func vaultConnectFailed(_ failure: MonitorFailure, at now: ContinuousClock.Instant) {
        vault.failed(at: now, random: random())
        lastVaultFailure = failure
    }

    /// The record of the last ``VaultAction/write(_:gap:capturedAt:)`` is in the vault.
    public mutating func writeSucceeded(at now: ContinuousClock.Instant) -> VaultAction {
        buffer.headWritten()
        return next(at: now)
    }

    /// The vault refused that record itself (bad data, a constraint, a trigger): retrying
    /// can't help, and it must not hold back every later record. It is dropped, and the next
    /// record written carries a gap for it.
    public mutating func writeRefused(reason: String, at now: ContinuousClock.Instant) -> VaultAction {
        buffer.headRefused(reason: reason)
        return next(at: now)
    }

    /// The vault could not take that record (unreachable, lock_timeout, not migrated…): it
    /// stays at the head of the buffer, and the vault is tried again after a backoff, so a
    /// vault that makes every write wait lock_timeout costs that wait once per backoff.
    public mutating func writeFailed(_ failure: MonitorFailure, facts: PostgresFailureFacts?, at now: ContinuousClock.Instant) -> VaultAction {
        let until = vault.failed(at: now, random: random())
        lastVaultFailure = failure
        flushDeadline = nil
        return .backOff(until: until, failure: failure, reconnect: facts?.connectionLost ?? true)
    }

    private mutating func next(at now: ContinuousClock.Instant) -> VaultAction {
        if let head = buffer.head, let deadline = flushDeadline, now < deadline {
            return .write(head.record, gap: head.gapToWrite, capturedAt: head.capturedAt)
        }
        flushDeadline = nil
        vault.succeeded()
        lastVaultFailure = nil
        return buffer.isEmpty ? .done : .later(pending: buffer.count)
    }

    private func schedule(_ s: ReconnectSchedule, at now: ContinuousClock.Instant) -> ConnectAction {
        if s.isDue(at: now) { return .connect }
        return .wait(until: s.nextAttempt ?? now, ceiling: s.ceiling)
    }
}

extension MonitorStateMachine: Sendable where Record: Sendable {}
