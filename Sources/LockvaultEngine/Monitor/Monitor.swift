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
    private var machine: MonitorStateMachine<CycleDocument>
    /// What the vault holds as of the last successful write: decides what of a cycle is sent.
    private var changes: VaultChanges<VaultRowKey>
    /// What the spool must hold (Core) and its files (nil: no spool configured).
    private var spool: VaultSpool?
    private let spoolFiles: CycleSpoolDirectory?
    /// Records replayed from the spool that the vault has not taken yet.
    private var replaying: (total: Int, pending: Set<UInt64>)?
    private var target: PostgresConnection?
    private var vault: PostgresConnection?
    private var reader: SnapshotReader
    /// Lock rows' keys and hash diffs from the previous cycle (most locks are carried unchanged).
    private let lockRowMemo = LockRowMemo()
    private var deadlocks = DeadlockTracker()
    private var serverLog: ServerLogTailer?
    /// When the server's log_line_prefix and log_destination were last read (they change on reload).
    private var serverLogSettingsReadAt: Date?
    private var resolverMemory = ResolverMemory()
    /// `lockvault@host[/cluster]`: the record_source of everything this monitor writes.
    public nonisolated let recordSource: String

    public init(configuration: MonitorConfiguration, logger: Logger, clock: MonitorClock = .system) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.machine = MonitorStateMachine(limits: configuration.limits, random: clock.random)
        self.changes = VaultChanges(heartbeatSeconds: configuration.heartbeatSeconds)
        self.reader = SnapshotReader(options: configuration.snapshot, conninfo: configuration.targetDSN, settings: configuration.session)
        self.serverLog = configuration.serverLogPath.map { ServerLogTailer(path: $0, format: configuration.serverLogFormat ?? ServerLogFormat(inferredFromPath: $0)) }
        let host = ProcessInfo.processInfo.hostName
        self.recordSource = "lockvault@\(host)" + (configuration.clusterName.isEmpty ? "" : "/\(configuration.clusterName)")
        self.spoolFiles = configuration.spoolDirectory.map(CycleSpoolDirectory.init(path:))
        if let files = spoolFiles {
            var spool = VaultSpool(maxBytes: configuration.spoolMaxBytes)
            let (records, entries, unreadable) = files.load()
            if !unreadable.isEmpty {
                logger.error("unreadable files in the spool were set aside (renamed *.unreadable); their cycles are not replayed", metadata: [
                    "spool": "\(files.path)", "files": "\(unreadable.joined(separator: ","))",
                ])
            }
            spool.restored(entries)
            machine.restore(records)
            self.spool = spool
            if !records.isEmpty {
                replaying = (records.count, Set(records.map(\.sequence)))
                logger.notice("found spooled cycle records from before the restart; they are written to the vault first, in order", metadata: [
                    "spooled": "\(records.count)", "spool": "\(files.path)",
                    "oldest": "\(PostgresTimestamp.format(records[0].capturedAt))", "newest": "\(PostgresTimestamp.format(records[records.count - 1].capturedAt))",
                ])
            }
        }
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
        if new.vaultDSN != configuration.vaultDSN || new.session != configuration.session { vault?.close(); vault = nil; changes.forget() }
        if new.serverLogPath != configuration.serverLogPath || new.serverLogFormat != configuration.serverLogFormat {
            serverLog = new.serverLogPath.map { ServerLogTailer(path: $0, format: new.serverLogFormat ?? ServerLogFormat(inferredFromPath: $0)) }
            serverLogSettingsReadAt = nil
        }
        reader.options = new.snapshot
        machine.limits = new.limits
        changes.heartbeatSeconds = new.heartbeatSeconds
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
            if write { outcome.vaultFailure = flush(); syncSpool() }
            return finished(outcome, started: started)
        }

        // 2. Understand it.
        let graph = WaitGraph(snapshot)
        let assessments = BlockerAssessment.assess(snapshot, policy: configuration.severity, graph: graph)
        let reports = readServerLog(at: snapshot.capturedAt)
        // The first cycle of a process resumes from the vault's last counters, so deadlocks
        // while nobody sampled (between cron runs, across a restart) are counted.
        let recorded = write && deadlocks.wantsRecordedBaseline ? recordedDeadlockCounts(systemIdentifier: snapshot.systemIdentifier) : nil
        let events = deadlocks.observe(snapshot, graph: graph, reports: reports, recorded: recorded,
                                       databaseNames: reports.contains { $0.database == nil && $0.databaseOID != nil } ? databaseNames() : [:])
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
        // Records spooled before a restart are part of the record: the downtime starts after them.
        let lastRecorded = write && machine.wantsLastRecordedCycle
            ? [lastRecordedCycle(systemIdentifier: snapshot.systemIdentifier), machine.buffer.records.last?.capturedAt].compactMap { $0 }.max() : nil
        let gap = machine.cycleSampled(at: snapshot.capturedAt, lastRecordedCycle: lastRecorded)
        outcome.cycleMilliseconds = milliseconds(since: started)
        if write {
            let record = CycleRecord(snapshot: snapshot, assessments: assessments, graph: graph, deadlocks: events, decisions: decisionRecords,
                                     killRule: outcome.rulings, killThresholdSeconds: configuration.resolve.killThresholdSeconds,
                                     clusterName: configuration.clusterName, recordSource: recordSource,
                                     cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: configuration.heartbeatSeconds,
                                     gap: nil, bufferedCycles: machine.buffer.count, spooledCycles: spool?.stored.count ?? 0,
                                     memo: lockRowMemo)
            lockRowMemo.cycleEnded()
            var document = CycleDocument(record)
            document.lockRowsGeneration = lockRowMemo.currentGeneration
            let dropped = machine.cycleRecorded(document, capturedAt: snapshot.capturedAt, gap: gap)
            if dropped > 0 {
                logger.error("vault buffer full: dropped the oldest cycle records; a gap is recorded for them", metadata: [
                    "dropped": "\(dropped)", "dropped_total": "\(machine.buffer.lostTotal)", "buffer_limit": "\(max(1, configuration.maxBufferedCycles))",
                ])
            }
            outcome.vaultFailure = flush()
            syncSpool()
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
                let signal: SignalAction = d.eligibility == .eligible(.cancelQueuedRequest) ? .cancelQueued : action == .cancel ? .cancel : .terminate
                let outcome = SessionSignaller.signal(signal, pid: s.pid, backendStart: start,
                                                      terminateTimeout: .milliseconds(configuration.resolve.terminateTimeoutMs),
                                                      scope: scope, on: conn)
                result.outcome = outcome
                if outcome == .done || outcome == .timedOut {
                    // A queued request's cancel escalates to nothing: it is not a holder to terminate later.
                    if action == .terminate { resolverMemory.recordTermination(at: now) } else if signal == .cancel {
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
                let sequence = machine.buffer.head?.sequence
                // Only what changed since the last successful write (VaultChanges); a record
                // replayed from the spool is written whole.
                var state = record.record.map { r in
                    r.changeState(lockBulk: record.lockRowsGeneration.map { lockRowMemo.bulk(r.locks, generation: $0) })
                }
                if gap != nil { state?.hasEvents = true }
                let planned = state.map { changes.plan($0) } ?? .all
                if planned == .skip {
                    if let state { changes.unchanged(state) }
                    action = machine.writeSucceeded(at: clock.now())
                    spoolDone(sequence)
                    continue
                }
                do {
                    let conn = try vaultConnection()
                    // A new connection forgets what the vault held (changes.forget()): the write is whole.
                    let plan: VaultChanges<VaultRowKey>.Plan = changes.known == nil ? .all : planned
                    let document: String
                    do {
                        document = try record.document(plan, carrying: gap)
                    } catch {
                        logger.error("could not encode the cycle record; it is skipped and recorded as a gap", metadata: ["error": "\(error)"])
                        action = machine.writeRefused(reason: "could not encode the record: \(error)", at: clock.now())
                        spoolDone(sequence)
                        continue
                    }
                    do {
                        let summaryAt = try CycleWriter.record(document, on: conn)
                        if let state { changes.written(state, summaryAt: summaryAt) } else { changes.forget() }
                        action = machine.writeSucceeded(at: clock.now())
                        spoolDone(sequence)
                    } catch let error as PostgresError where PostgresFailureFacts(error).refusesRecord && conn.isHealthy() {
                        logger.error("the vault rejected a cycle record; it is skipped and recorded as a gap", metadata: [
                            "error": "\(error.description)", "captured_at": "\(PostgresTimestamp.format(capturedAt))",
                        ])
                        changes.forget()
                        action = machine.writeRefused(reason: error.message, at: clock.now())
                        spoolDone(sequence)
                    }
                } catch {
                    // It may have committed without its answer: what the vault holds is not known now.
                    changes.forget()
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
        syncSpool()
        return (machine.buffer.count, failure)
    }

    /// Buffered records that are also in the spool (they survive a restart).
    public var spooledRecords: Int { spool?.stored.count ?? 0 }

    /// The vault has (or refused) the record `sequence`: its spool file goes at once, before
    /// the next record is written, so a crash can replay at most that one (idempotently).
    private func spoolDone(_ sequence: UInt64?) {
        guard let sequence else { return }
        if var replay = replaying, replay.pending.remove(sequence) != nil {
            replaying = replay.pending.isEmpty ? nil : replay
            if replay.pending.isEmpty {
                logger.notice("replayed the spooled cycle records from before the restart", metadata: ["replayed": "\(replay.total)"])
            }
        }
        guard let files = spoolFiles, var ledger = spool else { return }
        files.removeWritten(sequence, from: &ledger, logger: logger)
        spool = ledger
    }

    /// Makes the spool hold what the buffer holds (``VaultSpool`` decides, the directory
    /// writes): records the vault did not take this cycle are spooled; a spool that is full or
    /// unwritable leaves them in memory (logged once) and never stops a cycle.
    private func syncSpool() {
        guard var ledger = spool, let files = spoolFiles else { return }
        // Replayed records dropped from the buffer (its bound) are not pending any more.
        if var replay = replaying {
            replay.pending.formIntersection(machine.buffer.records.map(\.sequence))
            replaying = replay.pending.isEmpty ? nil : replay
        }
        files.sync(&ledger, with: machine.buffer, logger: logger)
        spool = ledger
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
            // A new connection may be to another vault (a reload), or to one restored since:
            // the next write is whole.
            changes.forget()
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

    /// The vault's current `deadlock_counter_s` row per database of this cluster, each seen
    /// at the later of its own load and the vault's last cycle of the cluster (the counter
    /// still stood there then). nil when the vault can't be asked: the first reading is then
    /// the baseline (logged, since deadlocks meanwhile go uncounted).
    private func recordedDeadlockCounts(systemIdentifier: String) -> [String: RecordedDeadlockCount]? {
        do {
            let conn = try vaultConnection()
            let rows = try conn.query("""
                SELECT c.database_name, c.deadlocks, greatest(c.load_date, m.last) AS seen_at
                FROM lock_monitoring.deadlock_counter_s c
                JOIN lock_monitoring.monitored_cluster_h h USING (cluster_hk)
                LEFT JOIN LATERAL (SELECT max(last_cycle_at) AS last FROM lock_monitoring.monitor_cycle_s x WHERE x.cluster_hk = c.cluster_hk) m ON true
                WHERE h.system_identifier = $1 AND c.load_end_date IS NULL
                """, [systemIdentifier])
            var counts: [String: RecordedDeadlockCount] = [:]
            for row in rows {
                counts[try row.decode("database_name", as: String.self)] = RecordedDeadlockCount(
                    deadlocks: try row.decode("deadlocks", as: Int64.self), seenAt: try row.decode("seen_at", as: Date.self))
            }
            return counts
        } catch {
            logger.warning("could not read the vault's last deadlock counters; deadlocks since the last recorded cycle are not counted",
                           metadata: ["error": "\(MonitorFailure.classify(error, side: .vault).message)"])
            return nil
        }
    }

    /// New deadlock reports from the server log, read with the server's own log_line_prefix
    /// (re-read every 30 s: a reload may change it).
    private func readServerLog(at now: Date) -> [DeadlockReport] {
        guard let serverLog else { return [] }
        if serverLogSettingsReadAt.map({ now.timeIntervalSince($0) >= 30 || now < $0 }) ?? true, let conn = target {
            if let row = try? conn.query("SELECT current_setting('log_line_prefix') AS prefix, current_setting('log_destination') AS destination").first,
               let prefix = try? row.decode("prefix", as: String.self) {
                if prefix != serverLog.linePrefix {
                    logger.info("reading the server log with the server's log_line_prefix", metadata: ["log_line_prefix": "\(prefix)"])
                }
                serverLog.use(linePrefix: prefix)
                let destinations = ((try? row.decode("destination", as: String.self)) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if serverLogSettingsReadAt == nil, !destinations.contains(serverLog.format.rawValue) {
                    logger.warning("the server does not write the configured server log format", metadata: [
                        "format": "\(serverLog.format.rawValue)", "log_destination": "\(destinations.joined(separator: ","))", "path": "\(serverLog.path)",
                    ])
                }
                serverLogSettingsReadAt = now
            }
        }
        return serverLog.poll()
    }

    /// Database OID → name on the monitored cluster, for log reports without a database name.
    private func databaseNames() -> [UInt32: String] {
        guard let conn = target, let rows = try? conn.query("SELECT oid::int8 AS oid, datname FROM pg_database") else { return [:] }
        var names: [UInt32: String] = [:]
        for row in rows {
            if let oid = try? row.decode("oid", as: Int64.self), let name = try? row.decode("datname", as: String.self) { names[UInt32(truncatingIfNeeded: oid)] = name }
        }
        return names
    }

    /// Runs `body` on the vault connection (scheduled analysis/cleanup, status): same thread as
    /// the cycles, so it never overlaps a cycle's transaction.
    public func withVault<T: Sendable>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try body(vaultConnection())
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
        (clock.now() - start).milliseconds
    }
}

extension MonitorConfiguration {
    /// The limits the Monitor's state machine works within.
    var limits: MonitorLimits {
        MonitorLimits(maxBufferedCycles: maxBufferedCycles, flushBudget: .milliseconds(max(1, flushBudgetMs)), heartbeatSeconds: heartbeatSeconds)
    }
}
