import Foundation
public import Logging
public import LockvaultCore
public import PostgresClient

/// One sampling cycle at a time: snapshot the target, assess, write the vault.
///
/// The I/O shell over ``MonitorStateMachine`` (LockvaultCore): every decision about
/// reconnecting, backing off, buffering, lost records and gaps is the state machine's; the
/// Monitor makes the libpq calls it asks for and reports what happened. An actor on a thread
/// of its own: every libpq call blocks that thread, never Swift's cooperative pool.
/// ``close()`` ends the thread.
public actor Monitor {
    private let executor = ThreadExecutor(name: "lockvault-monitor")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public private(set) var configuration: MonitorConfiguration
    private let logger: Logger
    private let clock: MonitorClock
    private var machine: MonitorStateMachine<CycleRecord>
    private var target: PostgresConnection?
    private var vault: PostgresConnection?
    private var reader: SnapshotReader
    private var deadlocks = DeadlockTracker()
    private var serverLog: ServerLogTailer?
    private var resolverMemory = ResolverMemory()
    /// `lockvault@host[/cluster]`: the record_source of everything this monitor writes.
    public nonisolated let recordSource: String

    public init(configuration: MonitorConfiguration, logger: Logger, clock: MonitorClock = .system) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.machine = MonitorStateMachine(limits: configuration.limits, random: clock.random)
        self.reader = SnapshotReader(options: configuration.snapshot, conninfo: configuration.targetDSN, settings: configuration.session)
        self.serverLog = configuration.serverLogPath.map { ServerLogTailer(path: $0, format: configuration.serverLogFormat) }
        let host = ProcessInfo.processInfo.hostName
        self.recordSource = "lockvault@\(host)" + (configuration.clusterName.isEmpty ? "" : "/\(configuration.clusterName)")
    }

    deinit {
        executor.shutdown()
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
        machine.limits = new.limits
        configuration = new
    }

    /// The pids of lockvault's own connections (never blockers to act on).
    public func ownPids() -> Set<Int32> {
        Set([target, vault].compactMap { $0?.backendPID }.filter { $0 != 0 })
    }

    /// Runs one cycle: never throws; problems are in the outcome (and the log).
    public func runCycle(write: Bool = true) -> CycleOutcome {
        let started = clock.now()
        var outcome = CycleOutcome(snapshot: nil, assessments: [], forest: [], deadlocks: [], cycleMilliseconds: 0,
                                   pendingWrites: machine.buffer.count, droppedRecords: machine.buffer.lostTotal)

        // 1. Sample the target.
        let snapshot: LockSnapshot
        do {
            snapshot = try reader.read(try targetConnection(), monitorPids: ownPids())
        } catch {
            let failure = MonitorFailure.classify(error, side: .target, role: target?.user)
            if target != nil { logger.warning("lost the monitored cluster", metadata: ["error": "\(failure.message)"]) }
            let facts = (error as? PostgresError).map(PostgresFailureFacts.init)
            if machine.targetLost(failure, facts: facts, connectionHealthy: target?.isHealthy() == true, at: clock.date()) == .reconnect {
                target?.close(); target = nil
            }
            outcome.targetFailure = failure
            // Records buffered earlier don't wait for the target: the vault may be elsewhere.
            if write { outcome.vaultFailure = flush() }
            return finished(outcome, started: started)
        }

        // 2. Understand it.
        let graph = WaitGraph(snapshot)
        let assessments = BlockerAssessment.assess(snapshot, policy: configuration.severity, graph: graph)
        let events = deadlocks.observe(snapshot, graph: graph, reports: serverLog?.poll() ?? [])
        outcome.snapshot = snapshot
        outcome.assessments = assessments
        outcome.forest = graph.forest
        outcome.deadlocks = events
        for event in events {
            logger.warning("deadlock", metadata: [
                "database": "\(event.database)", "deadlock.pids": "\(event.pids.sorted())", "deadlock.sources": "\(event.sources.sorted().map(\.rawValue))",
            ])
        }

        // 3. The kill rule for every blocker (the vault shows it); the resolver acts on its
        //    candidates, if configured (dry-run decisions are recorded too).
        let scope = SignalScope(ownPids: snapshot.monitorPids.union(ownPids()), ownApplicationName: configuration.session.applicationName,
                                allowSuperuser: configuration.resolve.allowSuperuser)
        outcome.rulings = configuration.resolve.decide(assessments, scope: scope, memory: resolverMemory, now: snapshot.capturedAt)
        var decisionRecords: [ResolveDecisionRecord] = []
        if configuration.resolve.enabled {
            outcome.decisions = resolve(outcome.rulings.filter(\.isCandidate), scope: scope, at: snapshot.capturedAt)
            decisionRecords = outcome.decisions.map { $0.record(decidedBy: configuration.decidedBy, at: snapshot.capturedAt) }
        }

        // 4. Record it, with the gap this sample ends (an outage, or this process's own start
        //    after downtime: only then is the vault asked when it last heard of the cluster).
        let lastRecorded = write && machine.wantsLastRecordedCycle ? lastRecordedCycle(systemIdentifier: snapshot.systemIdentifier) : nil
        let gap = machine.cycleSampled(at: snapshot.capturedAt, lastRecordedCycle: lastRecorded)
        outcome.cycleMilliseconds = milliseconds(since: started)
        if write {
            let record = CycleRecord(snapshot: snapshot, assessments: assessments, graph: graph, deadlocks: events, decisions: decisionRecords,
                                     killRule: outcome.rulings, killThresholdSeconds: configuration.resolve.killThresholdSeconds,
                                     clusterName: configuration.clusterName, recordSource: recordSource,
                                     cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: configuration.heartbeatSeconds,
                                     gap: nil)
            let dropped = machine.cycleRecorded(record, capturedAt: snapshot.capturedAt, gap: gap)
            if dropped > 0 {
                logger.error("vault buffer full: dropped the oldest cycle records; a gap is recorded for them", metadata: [
                    "dropped": "\(dropped)", "dropped_total": "\(machine.buffer.lostTotal)", "buffer_limit": "\(max(1, configuration.maxBufferedCycles))",
                ])
            }
            outcome.vaultFailure = flush()
        }
        return finished(outcome, started: started)
    }

    private func finished(_ outcome: CycleOutcome, started: ContinuousClock.Instant) -> CycleOutcome {
        var outcome = outcome
        outcome.pendingWrites = machine.buffer.count
        outcome.droppedRecords = machine.buffer.lostTotal
        outcome.cycleMilliseconds = milliseconds(since: started)
        return outcome
    }

    /// Decides and, unless a dry run, acts — on the target connection, re-checking identity in
    /// the statement that signals. Every decision is logged as one structured event.
    private func resolve(_ decisions: [ResolveDecision], scope: SignalScope, at now: Date) -> [ExecutedDecision] {
        var executed: [ExecutedDecision] = []
        for d in decisions {
            var result = ExecutedDecision(decision: d, outcome: nil)
            if d.verdict == .act, !d.dryRun, let action = d.action, let s = d.assessment.session, let start = s.backendStart, let conn = target {
                let outcome = SessionSignaller.signal(action == .cancel ? .cancel : .terminate, pid: s.pid, backendStart: start,
                                                      terminateTimeout: .milliseconds(configuration.resolve.terminateTimeoutMs),
                                                      scope: scope, on: conn)
                result.outcome = outcome
                if outcome == .done || outcome == .timedOut {
                    if action == .terminate { resolverMemory.recordTermination(at: now) } else {
                        resolverMemory.recordCancel(SessionID(pid: s.pid, backendStart: start), at: now)
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

    /// Does what the state machine asks until it has nothing more for this cycle: writes
    /// buffered records in order, each in its own transaction, until the buffer is empty or the
    /// flush budget is spent, and stops at the first failure. Returns why the vault could not
    /// be written.
    private func flush() -> MonitorFailure? {
        var action = machine.flush(at: clock.now())
        while true {
            switch action {
            case .done, .later:
                return nil
            case .backOff(_, let failure, let reconnect):
                if reconnect { vault?.close(); vault = nil }
                return failure
            case .write(let record, let gap, let capturedAt):
                do {
                    let conn = try vaultConnection()
                    let document: String
                    do {
                        document = try record.document(carrying: gap)
                    } catch {
                        logger.error("could not encode the cycle record; it is skipped and recorded as a gap", metadata: ["error": "\(error)"])
                        action = machine.writeRefused(reason: "could not encode the record: \(error)", at: clock.now())
                        continue
                    }
                    do {
                        _ = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [document]) }
                        action = machine.writeSucceeded(at: clock.now())
                    } catch let error as PostgresError where PostgresFailureFacts(error).refusesRecord && conn.isHealthy() {
                        logger.error("the vault rejected a cycle record; it is skipped and recorded as a gap", metadata: [
                            "error": "\(error.description)", "captured_at": "\(PostgresTimestamp.format(capturedAt))",
                        ])
                        action = machine.writeRefused(reason: error.message, at: clock.now())
                    }
                } catch {
                    let failure = MonitorFailure.classify(error, side: .vault, role: vault?.user)
                    action = machine.writeFailed(failure, facts: (error as? PostgresError).map(PostgresFailureFacts.init), at: clock.now())
                    logger.warning("vault write failed; cycle records buffered", metadata: ["error": "\(failure.message)", "buffered": "\(machine.buffer.count)"])
                }
            }
        }
    }

    /// Writes buffered cycle records without sampling (at shutdown, or to drain a backlog):
    /// the same order, budget and backoff as a cycle's write. Returns what is still buffered
    /// and why, if the vault could not be written.
    public func writeBuffered() -> (pending: Int, failure: MonitorFailure?) {
        let failure = flush()
        return (machine.buffer.count, failure)
    }

    private func targetConnection() throws -> PostgresConnection {
        if let target, !target.isClosed { return target }
        if case .wait(_, let ceiling) = machine.targetConnect(at: clock.now()) {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(ceiling) before reconnecting")
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
            machine.targetConnectFailed(at: clock.now())
            throw error
        }
    }

    private func vaultConnection() throws -> PostgresConnection {
        if let vault, !vault.isClosed { return vault }
        if case .wait(_, let ceiling) = machine.vaultConnect(at: clock.now()) {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(ceiling) before reconnecting to the vault")
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
            machine.vaultConnectFailed(MonitorFailure.classify(error, side: .vault), at: clock.now())
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

    /// Closes the connections and ends the monitor's thread once this call returns. Buffered
    /// records not yet written are lost (``writeBuffered()`` first). A call made after it still
    /// runs, on a thread that ends again when it is done.
    public func close() {
        target?.close(); target = nil
        vault?.close(); vault = nil
        reader.close()
        executor.shutdown()
    }

    /// Whether the monitor's thread is alive (it ends after ``close()``).
    public nonisolated var threadIsRunning: Bool { executor.isRunning }

    private func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let d = clock.now() - start
        return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}

extension MonitorConfiguration {
    /// The limits the Monitor's state machine works within.
    var limits: MonitorLimits {
        MonitorLimits(maxBufferedCycles: maxBufferedCycles, flushBudget: .milliseconds(max(1, flushBudgetMs)), heartbeatSeconds: heartbeatSeconds)
    }
}
