import Foundation
public import Logging
public import LockvaultCore
public import PostgresClient

/// What one cycle found and did.
public struct CycleOutcome: Sendable {
    public var snapshot: LockSnapshot?
    public var assessments: [BlockerAssessment]
    public var forest: [BlockingTree]
    public var deadlocks: [DeadlockEvent]
    /// The resolver's decisions this cycle, with what happened when acted on.
    public var decisions: [ExecutedDecision] = []
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

/// One sampling cycle at a time: snapshot the target, assess, write the vault.
///
/// An actor on a thread of its own: every libpq call of the cycle blocks that thread, never
/// Swift's cooperative pool. It owns its connections, reconnects after failures (with capped,
/// jittered backoff), records the unobserved period as a gap once the target is back, and
/// buffers cycle records while the vault is unreachable, writing them in order when it returns.
public actor Monitor {
    private let executor = ThreadExecutor(name: "lockvault-monitor")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public private(set) var configuration: MonitorConfiguration
    private let logger: Logger
    private var target: PostgresConnection?
    private var vault: PostgresConnection?
    private var reader: SnapshotReader
    private var deadlocks = DeadlockTracker()
    private var serverLog: ServerLogTailer?
    private var pending: [PendingRecord] = []
    private var lastObserved: Date?
    private var unobservedSince: (Date, String)?
    private var nextTargetAttempt = ContinuousClock.now
    private var nextVaultAttempt = ContinuousClock.now
    private var targetBackoff = Backoff()
    private var vaultBackoff = Backoff()
    /// `lockvault@host[/cluster]`: the record_source of everything this monitor writes.
    public nonisolated let recordSource: String
    private var droppedCycles = 0
    private var lastVaultFailure: MonitorFailure?
    /// Records lost while nothing was buffered behind them (a rejected last record): the next
    /// record enqueued carries the gap.
    private var strandedLoss: LostStretch?
    private var resolverMemory = ResolverMemory()

    public init(configuration: MonitorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.reader = SnapshotReader(options: configuration.snapshot, conninfo: configuration.targetDSN, settings: configuration.session)
        self.serverLog = configuration.serverLogPath.map { ServerLogTailer(path: $0, format: configuration.serverLogFormat) }
        let host = ProcessInfo.processInfo.hostName
        self.recordSource = "lockvault@\(host)" + (configuration.clusterName.isEmpty ? "" : "/\(configuration.clusterName)")
    }

    /// Applies a new configuration from the next cycle on. Connections are reopened only when
    /// the DSNs or session settings changed.
    public func reconfigure(_ new: MonitorConfiguration) {
        if new.targetDSN != configuration.targetDSN || new.session != configuration.session {
            target?.close(); target = nil
            reader.close()
            reader = SnapshotReader(options: new.snapshot, conninfo: new.targetDSN, settings: new.session)
        }
        if new.vaultDSN != configuration.vaultDSN || new.session != configuration.session { vault?.close(); vault = nil }
        if new.serverLogPath != configuration.serverLogPath || new.serverLogFormat != configuration.serverLogFormat {
            serverLog = new.serverLogPath.map { ServerLogTailer(path: $0, format: new.serverLogFormat) }
        }
        reader.options = new.snapshot
        configuration = new
    }

    /// The pids of lockvault's own connections (never blockers to act on).
    public func ownPids() -> Set<Int32> {
        Set([target, vault].compactMap { $0?.backendPID }.filter { $0 != 0 })
    }

    /// Runs one cycle: never throws; problems are in the outcome (and the log).
    public func runCycle(write: Bool = true) -> CycleOutcome {
        let started = ContinuousClock.now
        var outcome = CycleOutcome(snapshot: nil, assessments: [], forest: [], deadlocks: [], cycleMilliseconds: 0, pendingWrites: pending.count,
                                   droppedRecords: droppedCycles)

        // 1. Sample the target.
        let snapshot: LockSnapshot
        do {
            let conn = try targetConnection()
            snapshot = try reader.read(conn, monitorPids: ownPids())
        } catch {
            let failure = MonitorFailure.classify(error, side: .target, role: target?.user)
            if target != nil { logger.warning("lost the monitored cluster", metadata: ["error": "\(failure.message)"]) }
            // A statement that failed on a healthy connection (statement_timeout, say) leaves it
            // usable; anything else is reconnected next cycle.
            let statementFailed = (error as? PostgresError).map { !$0.requiresReconnect } ?? false
            if !(statementFailed && target?.isHealthy() == true) { target?.close(); target = nil }
            if unobservedSince == nil { unobservedSince = (lastObserved ?? Date(), "target unavailable: \(failure.message)") }
            outcome.targetFailure = failure
            // Records buffered earlier don't wait for the target: the vault may be elsewhere.
            if write { outcome.vaultFailure = flush() }
            outcome.pendingWrites = pending.count
            outcome.cycleMilliseconds = Self.ms(since: started)
            return outcome
        }
        targetBackoff.reset()

        // 2. Understand it.
        let graph = WaitGraph(snapshot)
        let assessments = BlockerAssessment.assess(snapshot, policy: configuration.severity, graph: graph)
        let cycles = graph.cycles.map { members -> (database: String, pids: [Int32]) in
            let pids = members.compactMap(\.pid)
            return (pids.compactMap { snapshot.backend($0)?.database }.first ?? "", pids)
        }
        let reports = serverLog?.poll() ?? []
        let events = deadlocks.observe(counts: snapshot.deadlockCounts, cycles: cycles, reports: reports, at: snapshot.capturedAt)
        outcome.snapshot = snapshot
        outcome.assessments = assessments
        outcome.forest = graph.forest
        outcome.deadlocks = events
        for event in events {
            logger.warning("deadlock", metadata: [
                "database": "\(event.database)", "deadlock.pids": "\(event.pids.sorted())", "deadlock.sources": "\(event.sources.sorted().map(\.rawValue))",
            ])
        }

        // 3. Resolve, if configured (dry-run decisions are recorded too).
        var decisionRecords: [ResolveDecisionRecord] = []
        if configuration.resolve.enabled {
            outcome.decisions = resolve(assessments, snapshot: snapshot)
            decisionRecords = outcome.decisions.map { $0.record(decidedBy: configuration.decidedBy, at: snapshot.capturedAt) }
        }

        // 4. Record it.
        if write, lastObserved == nil, unobservedSince == nil, let last = lastRecordedCycle(systemIdentifier: snapshot.systemIdentifier),
           snapshot.capturedAt.timeIntervalSince(last) > configuration.heartbeatSeconds + 5 {
            // The first cycle of this process: the time since the vault last heard of this
            // cluster (beyond a heartbeat) went unobserved — lockvault was stopped or crashed.
            unobservedSince = (last, "lockvault was not recording (stopped, crashed or not yet started); the gap starts at the last recorded cycle, which may be up to \(Int(configuration.heartbeatSeconds)) s before it stopped")
        }
        var gap: (Date, Date, String)?
        if let (since, reason) = unobservedSince {
            gap = (since, snapshot.capturedAt, reason)
            unobservedSince = nil
        }
        lastObserved = snapshot.capturedAt
        outcome.cycleMilliseconds = Self.ms(since: started)
        if write {
            let record = CycleRecord(snapshot: snapshot, assessments: assessments, graph: graph, deadlocks: events, decisions: decisionRecords,
                                     clusterName: configuration.clusterName, recordSource: recordSource,
                                     cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: configuration.heartbeatSeconds,
                                     gap: gap.map { (start: $0.0, end: $0.1, reason: $0.2) })
            enqueue(PendingRecord(capturedAt: snapshot.capturedAt, record: record, gap: gap.map { CycleGap(start: $0.0, end: $0.1, reason: $0.2) }))
            outcome.vaultFailure = flush()
        }
        outcome.pendingWrites = pending.count
        outcome.droppedRecords = droppedCycles
        outcome.cycleMilliseconds = Self.ms(since: started)
        return outcome
    }

    /// Decides and, unless a dry run, acts — on the target connection, re-checking identity in
    /// the statement that signals. Every decision is logged as one structured event.
    private func resolve(_ assessments: [BlockerAssessment], snapshot: LockSnapshot) -> [ExecutedDecision] {
        let policy = configuration.resolve
        let decisions = policy.decide(assessments, monitorPids: snapshot.monitorPids.union(ownPids()), memory: resolverMemory, now: snapshot.capturedAt)
        var executed: [ExecutedDecision] = []
        for d in decisions {
            var result = ExecutedDecision(decision: d, outcome: nil)
            if d.verdict == .act, !d.dryRun, let action = d.action, let s = d.assessment.session, let start = s.backendStart, let conn = target {
                let outcome = SessionSignaller.signal(action == .cancel ? .cancel : .terminate, pid: s.pid, backendStart: start,
                                                      terminateTimeout: .milliseconds(configuration.terminateTimeoutMs),
                                                      allowSuperuser: policy.allowSuperuser, monitorApplicationName: configuration.session.applicationName,
                                                      monitorPids: snapshot.monitorPids.union(ownPids()), on: conn)
                result.outcome = outcome
                if outcome == .done || outcome == .timedOut {
                    if action == .terminate { resolverMemory.recordTermination(at: snapshot.capturedAt) } else {
                        resolverMemory.recordCancel(SessionID(pid: s.pid, backendStart: start), at: snapshot.capturedAt)
                    }
                }
            }
            let a = d.assessment
            logger.log(level: d.verdict == .act && !d.dryRun ? .critical : .notice, "resolve decision", metadata: [
                "decision": "\(result.decisionName)", "reason": "\(d.reason)", "outcome": "\(result.outcomeText ?? "")",
                "dry_run": "\(d.dryRun)", "severity": "\(a.severity)", "blocker.pid": "\(a.pid.map(String.init) ?? "")",
                "blocked_count": "\(a.blockedCount)", "database": "\(a.session?.database ?? "")", "user": "\(a.session?.user ?? "")",
                "application": "\(a.session?.applicationName ?? "")",
            ])
            executed.append(result)
        }
        return executed
    }

    /// Adds a cycle record to the ordered buffer. Beyond ``MonitorConfiguration/maxBufferedCycles``
    /// the oldest records are dropped, and the record that is then oldest carries a gap covering
    /// them, so the vault says that nothing is known about that period rather than nothing.
    func enqueue(_ record: PendingRecord) {
        pending.append(record)
        if pending.count == 1, let stranded = strandedLoss {
            pending[0].lost = stranded
            strandedLoss = nil
        }
        let limit = max(1, configuration.maxBufferedCycles)
        guard pending.count > limit else { return }
        let dropped = Array(pending.prefix(pending.count - limit))
        pending.removeFirst(dropped.count)
        droppedCycles += dropped.count
        var stretch = LostStretch(dropped, start: dropped[0].capturedAt)
        stretch.dropped += dropped.count
        stretch.bufferLimit = max(stretch.bufferLimit, limit)
        carry(stretch)
        logger.error("vault buffer full: dropped the oldest cycle records; a gap is recorded for them", metadata: [
            "dropped": "\(dropped.count)", "dropped_total": "\(droppedCycles)", "buffer_limit": "\(limit)",
        ])
    }

    /// The record now at the head of the buffer — or, if none, the next one enqueued — carries
    /// the gap for records that will never be written.
    private func carry(_ stretch: LostStretch) {
        if pending.isEmpty {
            strandedLoss = strandedLoss.map { $0.merged(stretch) } ?? stretch
        } else {
            pending[0].lost = pending[0].lost.map { $0.merged(stretch) } ?? stretch
        }
    }

    /// Writes buffered records in order, each in its own transaction, until the buffer is
    /// empty or the flush budget is spent (the rest goes next cycle, so a long backlog never
    /// stalls sampling). Stops at the first failure and waits a backoff before trying again, so
    /// a vault that makes every write wait lock_timeout costs that wait once per backoff, not
    /// every cycle. Returns why the vault could not be written.
    private func flush() -> MonitorFailure? {
        guard !pending.isEmpty else { return nil }
        if ContinuousClock.now < nextVaultAttempt, let last = lastVaultFailure { return last }
        let deadline = ContinuousClock.now + .milliseconds(max(1, configuration.flushBudgetMs))
        do {
            let conn = try vaultConnection()
            while let next = pending.first {
                do {
                    _ = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [try next.document()]) }
                    pending.removeFirst()
                } catch let error as PostgresError where Self.isRejection(error) && conn.isHealthy() {
                    // The vault refuses this record itself (bad data, a constraint, a trigger):
                    // retrying can't help, and it must not hold back every later record.
                    pending.removeFirst()
                    droppedCycles += 1
                    logger.error("the vault rejected a cycle record; it is skipped and recorded as a gap", metadata: [
                        "error": "\(error.description)", "captured_at": "\(PostgresTimestamp.format(next.capturedAt))",
                    ])
                    var stretch = LostStretch([next], start: next.capturedAt)
                    stretch.rejected += 1
                    stretch.rejection = stretch.rejection ?? error.message
                    carry(stretch)
                }
                if ContinuousClock.now >= deadline { break }
            }
            vaultBackoff.reset()
            lastVaultFailure = nil
            return nil
        } catch {
            let failure = MonitorFailure.classify(error, side: .vault, role: vault?.user)
            if let pgError = error as? PostgresError, pgError.requiresReconnect { vault?.close(); vault = nil }
            if error is MonitorFailure { vault?.close(); vault = nil }
            nextVaultAttempt = ContinuousClock.now + vaultBackoff.nextDelay()
            lastVaultFailure = failure
            logger.warning("vault write failed; cycle records buffered", metadata: ["error": "\(failure.message)", "buffered": "\(pending.count)"])
            return failure
        }
    }

    /// Writes buffered cycle records without sampling (at shutdown, or to drain a backlog):
    /// the same order, budget and backoff as a cycle's write. Returns what is still buffered
    /// and why, if the vault could not be written.
    public func writeBuffered() -> (pending: Int, failure: MonitorFailure?) {
        let failure = flush()
        return (pending.count, failure)
    }

    private func targetConnection() throws -> PostgresConnection {
        if let target, !target.isClosed { return target }
        guard ContinuousClock.now >= nextTargetAttempt else {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(targetBackoff.currentCeiling) before reconnecting")
        }
        do {
            let conn = try PostgresConnection(conninfo: configuration.targetDSN, settings: configuration.session)
            do {
                try MonitorFailure.checkTarget(conn)
            } catch {
                conn.close()
                throw error
            }
            target = conn
            logger.info("connected to the monitored cluster", metadata: ["dsn": "\(conn.redactedConninfo)", "pid": "\(conn.backendPID)"])
            return conn
        } catch {
            nextTargetAttempt = ContinuousClock.now + targetBackoff.nextDelay()
            throw error
        }
    }

    private func vaultConnection() throws -> PostgresConnection {
        if let vault, !vault.isClosed { return vault }
        guard ContinuousClock.now >= nextVaultAttempt else {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(vaultBackoff.currentCeiling) before reconnecting to the vault")
        }
        do {
            let conn = try PostgresConnection(conninfo: configuration.vaultDSN ?? configuration.targetDSN, settings: configuration.session)
            do {
                try MonitorFailure.checkVault(conn)
            } catch {
                conn.close()
                throw error
            }
            vault = conn
            return conn
        } catch {
            nextVaultAttempt = ContinuousClock.now + vaultBackoff.nextDelay()
            throw error
        }
    }

    /// Connects to the monitored cluster now (if not connected) and checks version and
    /// privileges; throws the classified failure. For start-up checks and the command line.
    public func checkTarget() throws(MonitorFailure) {
        do { _ = try targetConnection() } catch { throw MonitorFailure.classify(error, side: .target) }
    }

    /// Connects to the vault now (if not connected) and checks that it is migrated and
    /// writable; throws the classified failure.
    public func checkVault() throws(MonitorFailure) {
        do { _ = try vaultConnection() } catch { throw MonitorFailure.classify(error, side: .vault) }
    }

    /// When the vault last recorded a cycle of this cluster (any lockvault), or nil when it
    /// never did or can't be asked now (then no gap is inferred: better none than a wrong one).
    private func lastRecordedCycle(systemIdentifier: String) -> Date? {
        guard let conn = try? vaultConnection() else { return nil }
        return try? conn.query("""
            SELECT max(c.last_cycle_at) AS last FROM lock_monitoring.monitor_cycle_s c
            JOIN lock_monitoring.monitored_cluster_h h USING (cluster_hk) WHERE h.system_identifier = $1
            """, [systemIdentifier])[0].decode("last", as: Date?.self)
    }

    /// Runs `body` on the vault connection (scheduled analysis/cleanup, status): same thread as
    /// the cycles, so it never overlaps a cycle's transaction.
    public func withVault<T: Sendable>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try body(vaultConnection())
    }

    /// Runs `body` on the target connection (resolve actions).
    public func withTarget<T: Sendable>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try body(targetConnection())
    }

    public func close() {
        target?.close(); target = nil
        vault?.close(); vault = nil
        reader.close()
    }

    /// Errors about the record itself (data exception, integrity violation, raised by a
    /// function or trigger), as opposed to the vault being unavailable or unwritable for us.
    static func isRejection(_ error: PostgresError) -> Bool {
        guard error.code == .queryFailed, let state = error.sqlState else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state == "P0001"
    }

    static func ms(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? PostgresError { return e.description }
        return "\(error)"
    }
}

/// A nothing-observed period to record with a cycle.
struct CycleGap: Sendable {
    var start: Date
    var end: Date
    var reason: String
}

/// Cycle records that will never reach the vault, to be reported as one gap by the record
/// written after them.
struct LostStretch: Sendable {
    /// The earliest moment not observed: the first lost sample, or the start of an outage it
    /// reported.
    var start: Date
    var dropped = 0
    var bufferLimit = 0
    var rejected = 0
    var rejection: String?
    /// A target outage one of the lost records reported.
    var outage: String?

    /// Covers `records` (and the losses they carried themselves).
    init(_ records: [PendingRecord], start: Date) {
        self.start = ([start] + records.compactMap { $0.gap?.start }).min()!
        outage = records.compactMap { $0.gap?.reason }.first
        for carried in records.compactMap(\.lost) { self = merged(carried) }
    }

    func merged(_ other: LostStretch) -> LostStretch {
        var m = self
        m.start = min(start, other.start)
        m.dropped += other.dropped
        m.bufferLimit = max(bufferLimit, other.bufferLimit)
        m.rejected += other.rejected
        m.rejection = rejection ?? other.rejection
        m.outage = outage ?? other.outage
        return m
    }

    /// `vault unavailable: 3 cycle records dropped (buffer limit 3); target unavailable: …`
    var reason: String {
        var parts: [String] = []
        if dropped > 0 { parts.append("vault unavailable: \(dropped) cycle record\(dropped == 1 ? "" : "s") dropped (buffer limit \(bufferLimit))") }
        if rejected > 0 { parts.append("vault rejected \(rejected) cycle record\(rejected == 1 ? "" : "s"): \(rejection ?? "")") }
        if let outage { parts.append(outage) }
        return parts.joined(separator: "; ")
    }
}

/// A cycle record waiting for the vault.
struct PendingRecord: Sendable {
    var capturedAt: Date
    /// `record_cycle`'s document.
    var record: CycleRecord
    /// The gap this record reports itself (a target outage that ended with its sample).
    var gap: CycleGap?
    /// Records before this one that will never be written; its gap grows to cover them.
    var lost: LostStretch?

    /// The document to write: `record`, with the gap widened over lost records.
    func document() throws -> String {
        guard let lost else { return try record.encoded() }
        let start = min(lost.start, gap?.start ?? lost.start)
        let reason = [lost.reason, gap?.reason].compactMap { $0 }.filter { !$0.isEmpty && $0 != lost.outage }.joined(separator: "; ")
        var widened = record
        widened.gap = GapRow(start: start, end: capturedAt, reason: reason)
        return try widened.encoded()
    }
}

/// A resolver decision and, when it was acted on, what the server did.
public struct ExecutedDecision: Sendable {
    public var decision: ResolveDecision
    public var outcome: SignalOutcome?

    /// cancelled / terminated / failed once acted on; the decision's own name otherwise.
    public var decisionName: String {
        guard let outcome, let action = decision.action else { return decision.decision }
        switch outcome {
        case .done: return action == .cancel ? "cancelled" : "terminated"
        case .timedOut: return "terminate_timed_out"
        case .identityChanged, .noLongerBlocking, .protected: return "skipped"
        case .refused: return "failed"
        }
    }

    public var outcomeText: String? {
        guard let outcome else { return nil }
        switch outcome {
        case .done: return "done"
        case .timedOut: return "sent, but the session had not exited within the timeout"
        case .identityChanged: return "identity changed: no session with that (pid, backend_start) any more"
        case .noLongerBlocking: return "no longer blocking"
        case .protected: return "protected session (lockvault, superuser or not a client backend)"
        case .refused(let message): return "refused: \(message)"
        }
    }

    func record(decidedBy: String, at: Date) -> ResolveDecisionRecord {
        let a = decision.assessment
        var gid: String?
        if case .prepared(let g) = a.participant { gid = g }
        return ResolveDecisionRecord(
            pid: a.pid, backendStart: a.session?.backendStart, preparedGid: gid,
            database: a.session?.database ?? a.preparedTransaction?.database, decidedAt: at, decision: decisionName,
            reason: outcomeText.map { "\(decision.reason) — \($0)" } ?? decision.reason, dryRun: decision.dryRun,
            action: decision.action?.rawValue, outcome: outcomeText, severity: a.severity.rawValue, blockedCount: a.blockedCount,
            blockingSeconds: a.blockingDurationSeconds, decidedBy: decidedBy)
    }
}
