public import Foundation

/// The limits the vault side works within (from the configuration; may change on reload).
public struct VaultLimits: Sendable, Equatable {
    /// Cycles kept while the vault is unreachable; beyond it the oldest are dropped and a gap
    /// is recorded.
    public var maxBufferedCycles: Int
    /// How long one flush may spend writing buffered cycles; the rest goes next cycle, so a
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

/// Everything decided about writing cycles to the vault, as a value that takes events and
/// returns actions (the model is postgres-nio's connection state machines): the bounded buffer
/// and the gaps of lost cycles, the vault's backoff, what of each cycle is sent
/// (``VaultChanges``), and the spool that carries the buffer across a restart (``VaultSpool``).
///
/// The adapter (the Engine's VaultWriter) does what an ``Action`` says and reports back with
/// the matching event, until the action is ``Action/wait``; what it should log is in
/// ``takeNotices()``. The rows are opaque (`Rows`); `Key` is how the vault keys them.
public struct VaultStateMachine<Rows, Key: Hashable & Sendable> {
    public typealias Cycle = PendingCycle<Rows, Key>

    public enum Action {
        /// Open a vault connection; report ``connected(at:)`` or ``connectFailed(_:at:)``.
        case connect
        /// Write `cycle` in a transaction of its own, as `plan` says, carrying `gap`; report
        /// ``written(summaryAt:at:)``, ``writeFailed(_:facts:connectionHealthy:at:)`` or
        /// ``unencodable(reason:at:)``.
        case write(Cycle, plan: VaultChanges<Key>.Plan, gap: ObservationGap?)
        /// Write (or rewrite) the spool file of `cycle`, durably, if it takes at most `room`
        /// bytes; report ``spooled(sequence:bytes:)``, ``spoolFull()`` or ``spoolFailed(reason:)``.
        case spool(Cycle, room: Int)
        /// Remove the spool file of `sequence`; report ``unspooled(sequence:at:)`` (also when
        /// the removal failed: the file is forgotten either way).
        case unspool(sequence: UInt64)
        /// Close the vault connection; report ``disconnected(at:)``.
        case disconnect
        /// Nothing more until the next event.
        case wait
    }

    private enum Phase {
        case idle
        /// Writing buffered cycles until the buffer is empty or the budget's deadline passes.
        case flushing(deadline: ContinuousClock.Instant)
        /// Making the spool hold what the buffer holds.
        case syncingSpool
    }

    public var limits: VaultLimits {
        didSet {
            buffer.limit = limits.maxBufferedCycles
            changes.heartbeatSeconds = limits.heartbeatSeconds
        }
    }
    public private(set) var buffer: VaultBuffer<Rows, Key>
    /// What the vault holds as of the last write known to have committed.
    public private(set) var changes: VaultChanges<Key>
    /// What the spool holds; nil when there is no spool.
    public private(set) var spool: VaultSpool?
    public private(set) var schedule: ReconnectSchedule
    /// Why the vault failed last; nil once a flush got through.
    public private(set) var failure: MonitorFailure?
    /// Whether the adapter holds an open vault connection.
    public private(set) var isConnected = false
    private var phase = Phase.idle
    /// The digests of the cycle being written (nil: it came from the spool).
    private var inFlight: VaultRowDigests<Key>?
    /// Cycles from the spool not written yet, and how many there were.
    private var replaying: (total: Int, pending: Set<UInt64>)?
    private var notices: [VaultNotice] = []
    private let random: @Sendable () -> Double

    /// - Parameter spoolMaxBytes: the spool's bound; nil when there is no spool.
    public init(limits: VaultLimits, spoolMaxBytes: Int? = nil, backoff: Backoff = Backoff(), random: @escaping @Sendable () -> Double) {
        self.limits = limits
        self.buffer = VaultBuffer(limit: limits.maxBufferedCycles)
        self.changes = VaultChanges(heartbeatSeconds: limits.heartbeatSeconds)
        self.spool = spoolMaxBytes.map(VaultSpool.init(maxBytes:))
        self.schedule = ReconnectSchedule(backoff: backoff)
        self.random = random
    }

    /// What the adapter should log since it last asked, oldest first.
    public mutating func takeNotices() -> [VaultNotice] {
        defer { notices = [] }
        return notices
    }

    /// The newest cycle waiting for the vault (the downtime after a restart starts after it).
    public var newestBuffered: Date? { buffer.records.last?.capturedAt }

    // MARK: Cycles in

    /// At start: the cycles a process before this one spooled, and the spool's files. They are
    /// written first, in their order, each whole.
    public mutating func restore(_ cycles: [Cycle], files: [UInt64: VaultSpool.Entry]) {
        spool?.restored(files)
        buffer.restore(cycles)
        guard let oldest = cycles.map(\.capturedAt).min(), let newest = cycles.map(\.capturedAt).max() else { return }
        replaying = (cycles.count, Set(cycles.map(\.sequence)))
        notices.append(.replaying(count: cycles.count, oldest: oldest, newest: newest))
    }

    /// A cycle was sampled and its rows built; it joins the buffer, with the gap it reports
    /// itself. Returns how many of the oldest cycles were dropped to stay within the limit.
    @discardableResult
    public mutating func cycleBuilt(_ rows: Rows, digests: VaultRowDigests<Key>, capturedAt: Date, gap: ObservationGap?) -> Int {
        let dropped = buffer.append(.built(rows, digests: digests), capturedAt: capturedAt, gap: gap)
        if dropped > 0 { notices.append(.dropped(count: dropped, total: buffer.lostTotal, limit: max(1, limits.maxBufferedCycles))) }
        return dropped
    }

    // MARK: Flushing

    /// A cycle's tick (or a drain at shutdown): writes what may be written now, then syncs the spool.
    public mutating func flush(at now: ContinuousClock.Instant) -> Action {
        guard !buffer.isEmpty, schedule.isDue(at: now) || failure == nil else { return startSpoolSync() }
        phase = .flushing(deadline: now + max(.milliseconds(1), limits.flushBudget))
        return next(at: now)
    }

    /// Whether a vault connection may be opened now outside a flush (for the reads the Monitor
    /// makes of the vault); report the outcome with ``connected(at:)`` or ``connectFailed(_:at:)``.
    public func connect(at now: ContinuousClock.Instant) -> ConnectAction {
        schedule.connectAction(at: now)
    }

    /// A vault connection is open (and checked). It may be to another vault, or to one
    /// restored since: the next write is whole.
    public mutating func connected(at now: ContinuousClock.Instant) -> Action {
        isConnected = true
        changes.forget()
        return resume(at: now)
    }

    /// Opening (or checking) a vault connection failed: the vault is tried again after a backoff.
    public mutating func connectFailed(_ failure: MonitorFailure, at now: ContinuousClock.Instant) -> Action {
        isConnected = false
        return backOff(failure, at: now)
    }

    /// The vault committed the write; `summaryAt` is the last_cycle_at of its current summary
    /// row as record_cycle answered it (nil: not answered).
    public mutating func written(summaryAt: Date?, at now: ContinuousClock.Instant) -> Action {
        guard let head = buffer.head else { return resume(at: now) }
        if let inFlight { changes.written(inFlight, summaryAt: summaryAt) } else { changes.forget() }
        buffer.headWritten()
        return headDone(head.sequence, at: now)
    }

    /// The write failed. If the vault refused the record itself (bad data, a constraint, a
    /// trigger) on a connection that still answers, retrying can't help and it must not hold
    /// back every later cycle: it is dropped, and the next cycle written carries a gap for it.
    /// Otherwise (unreachable, lock_timeout, not migrated…) it stays at the head and the vault
    /// is tried again after a backoff, so a vault that makes every write wait lock_timeout
    /// costs that wait once per backoff. Either way what the vault holds is not known now (it
    /// may have committed without its answer): the next write is whole.
    public mutating func writeFailed(_ failure: MonitorFailure, facts: PostgresFailureFacts?, connectionHealthy: Bool,
                                     at now: ContinuousClock.Instant) -> Action {
        changes.forget()
        if let facts, facts.refusesRecord, connectionHealthy, let head = buffer.head {
            notices.append(.refused(reason: facts.message, capturedAt: head.capturedAt))
            buffer.headRefused(reason: facts.message)
            return headDone(head.sequence, at: now)
        }
        return backOff(failure, at: now, disconnecting: facts?.connectionLost ?? true)
    }

    /// The cycle could not be encoded: like a refusal, it is dropped and becomes a gap.
    public mutating func unencodable(reason: String, at now: ContinuousClock.Instant) -> Action {
        guard let head = buffer.head else { return resume(at: now) }
        notices.append(.unencodable(reason: reason))
        buffer.headRefused(reason: "could not encode the record: \(reason)")
        return headDone(head.sequence, at: now)
    }

    /// The vault connection is closed.
    public mutating func disconnected(at now: ContinuousClock.Instant) -> Action {
        isConnected = false
        return resume(at: now)
    }

    /// The configuration names another vault (or other session settings): the connection is
    /// closed, the next write is whole, and the new vault is tried at once.
    public mutating func vaultChanged(at now: ContinuousClock.Instant) -> Action {
        changes.forget()
        schedule.succeeded()
        failure = nil
        return isConnected ? .disconnect : .wait
    }

    // MARK: The spool

    /// The file of `sequence` is written and synced.
    public mutating func spooled(sequence: UInt64, bytes: Int) -> Action {
        let lost = buffer.records.first { $0.sequence == sequence }?.lost
        spool?.stored(sequence: sequence, lost: lost, bytes: bytes)
        return spoolNext()
    }

    /// The file would not fit within the spool's bound: later cycles stay in memory only until
    /// the buffer is empty again, so the spool stays contiguous.
    public mutating func spoolFull() -> Action {
        if spool?.full() == true, let spool {
            notices.append(.spoolFull(maxBytes: spool.maxBytes, spooled: spool.stored.count))
        }
        phase = .idle
        return .wait
    }

    /// Writing the file failed: spooling is suspended the same way (reported once, not every cycle).
    public mutating func spoolFailed(reason: String) -> Action {
        if spool?.storeFailed(reason: reason) == true { notices.append(.spoolUnwritable(reason: reason)) }
        phase = .idle
        return .wait
    }

    /// The file of `sequence` is gone (or could not be removed: it is forgotten either way).
    public mutating func unspooled(sequence: UInt64, at now: ContinuousClock.Instant) -> Action {
        spool?.removed(sequence: sequence)
        return resume(at: now)
    }

    // MARK: Steps

    private mutating func next(at now: ContinuousClock.Instant) -> Action {
        guard case .flushing(let deadline) = phase else { return resume(at: now) }
        guard let head = buffer.head, now < deadline else {
            schedule.succeeded()
            failure = nil
            return startSpoolSync()
        }
        let gap = head.gapToWrite
        var digests = head.digests
        if gap != nil { digests?.hasEvents = true }
        let planned = digests.map { changes.plan($0) } ?? .all
        if planned == .skip, let digests {
            // The vault holds this cycle's rows already and no heartbeat is due: no call at all.
            changes.unchanged(digests)
            buffer.headWritten()
            return headDone(head.sequence, at: now)
        }
        guard isConnected else { return .connect }
        inFlight = digests
        return .write(head, plan: changes.known == nil ? .all : planned, gap: gap)
    }

    /// The head is in the vault (or will never be): its spool file goes at once, before the
    /// next cycle is written, so a crash can replay at most that one (and writing it again
    /// changes nothing: record_cycle is idempotent).
    private mutating func headDone(_ sequence: UInt64, at now: ContinuousClock.Instant) -> Action {
        inFlight = nil
        if var replay = replaying, replay.pending.remove(sequence) != nil {
            replaying = replay.pending.isEmpty ? nil : replay
            if replay.pending.isEmpty { notices.append(.replayed(count: replay.total)) }
        }
        if spool?.stored[sequence] != nil { return .unspool(sequence: sequence) }
        return next(at: now)
    }

    /// The vault failed: no attempt before the backoff. A flush then only syncs the spool —
    /// after closing the connection first, when `disconnecting` (its report resumes the sync).
    private mutating func backOff(_ failure: MonitorFailure, at now: ContinuousClock.Instant, disconnecting: Bool = false) -> Action {
        schedule.failed(at: now, random: random())
        self.failure = failure
        guard case .flushing = phase else { return disconnecting ? .disconnect : .wait }
        notices.append(.writeFailed(failure, buffered: buffer.count))
        enterSpoolSync()
        return disconnecting ? .disconnect : spoolNext()
    }

    private mutating func resume(at now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .idle: return .wait
        case .flushing: return next(at: now)
        case .syncingSpool: return spoolNext()
        }
    }

    private mutating func startSpoolSync() -> Action {
        enterSpoolSync()
        return spoolNext()
    }

    private mutating func enterSpoolSync() {
        // Replayed cycles dropped from the buffer (its bound) are not pending any more.
        if var replay = replaying {
            replay.pending.formIntersection(buffer.records.map(\.sequence))
            replaying = replay.pending.isEmpty ? nil : replay
        }
        phase = .syncingSpool
    }

    /// The next step that makes the spool hold the cycles the vault did not take: those still
    /// buffered are spooled, those gone are removed; a spool that is full or unwritable leaves
    /// them in memory and never stops a cycle.
    private mutating func spoolNext() -> Action {
        guard var ledger = spool else {
            phase = .idle
            return .wait
        }
        let step = ledger.next(for: buffer)
        spool = ledger
        guard let step else {
            phase = .idle
            return .wait
        }
        switch step {
        case .remove(let sequence):
            return .unspool(sequence: sequence)
        case .store(let sequence):
            guard let cycle = buffer.records.first(where: { $0.sequence == sequence }) else {
                phase = .idle
                return .wait
            }
            return .spool(cycle, room: ledger.room(for: sequence))
        }
    }
}

extension VaultStateMachine: Sendable where Rows: Sendable {}

/// What the vault side has to say, for the adapter's log.
public enum VaultNotice: Sendable, Equatable {
    /// The buffer was full: the oldest cycles were dropped (a gap is recorded for them).
    case dropped(count: Int, total: Int, limit: Int)
    /// Cycles spooled before the restart were found; they are written first, in order.
    case replaying(count: Int, oldest: Date, newest: Date)
    /// The last of them is written.
    case replayed(count: Int)
    /// The vault refused a cycle; it is skipped and recorded as a gap.
    case refused(reason: String, capturedAt: Date)
    /// A cycle could not be encoded; it is skipped and recorded as a gap.
    case unencodable(reason: String)
    /// The vault could not be written; the cycles stay buffered.
    case writeFailed(MonitorFailure, buffered: Int)
    /// The spool is full: later cycles are kept in memory only.
    case spoolFull(maxBytes: Int, spooled: Int)
    /// The spool cannot be written: cycles are kept in memory only.
    case spoolUnwritable(reason: String)
}
