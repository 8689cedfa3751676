import Foundation
public import Logging
public import LockvaultCore
public import PostgresClient

/// One sampling cycle at a time: snapshot the target, assess, apply the kill rule, and hand
/// the cycle to the ``VaultWriter``.
///
/// The target side's I/O shell: when to reconnect and which gap a sample closes are
/// ``TargetStateMachine``'s decisions (LockvaultCore); everything about the vault is the
/// writer's. An actor on a thread of its own: every libpq call blocks that thread, never
/// Swift's cooperative pool. ``close()`` ends the thread.
public actor Monitor {
    private let executor = ThreadExecutor(name: "lockvault-monitor")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public private(set) var settings: MonitorSettings
    /// Who decided, for the audit ("daemon@host" or "cli@host").
    public nonisolated let decidedBy: String
    private let logger: Logger
    private let clock: MonitorClock
    private var machine: TargetStateMachine
    private var target: PostgresConnection?
    private var reader: SnapshotReader
    private let writer: VaultWriter
    private var deadlocks = DeadlockTracker()
    private var episodes = EpisodeTracker()
    private var serverLog: ServerLogReader?
    private var resolver = Resolver()
    /// Who raises alerts (the daemon's alert service): asked before a sampled cycle is recorded.
    private let alerting: (any CycleAlerting)?
    /// `lockvault@host[/cluster]`: the record_source of everything this monitor writes.
    public nonisolated let recordSource: String
    /// Set by ``interrupt()``: the running cycle's statements are cancelled and it writes nothing more.
    private nonisolated let stopping = Interruption()

    public init(settings: MonitorSettings, decidedBy: String = "daemon", logger: Logger, clock: MonitorClock = .system,
                alerting: (any CycleAlerting)? = nil) {
        self.settings = settings
        self.decidedBy = decidedBy
        self.alerting = alerting
        self.logger = logger
        self.clock = clock
        self.machine = TargetStateMachine(heartbeatSeconds: settings.vault.heartbeatSeconds, random: clock.random)
        let sampling = settings.sampling
        self.reader = SnapshotReader(options: sampling.snapshot, conninfo: sampling.targetDSN, settings: sampling.session, clock: clock)
        self.serverLog = sampling.serverLogPath.map { ServerLogReader(path: $0, format: sampling.serverLogFormat) }
        let host = ProcessInfo.processInfo.hostName
        self.recordSource = "lockvault@\(host)" + (settings.clusterName.isEmpty ? "" : "/\(settings.clusterName)")
        self.writer = VaultWriter(configuration: settings.writer(recordSource: recordSource, decidedBy: decidedBy), logger: logger, clock: clock)
    }

    deinit {
        executor.shutdown()
    }

    /// Applies a new configuration from the next cycle on. Connections are reopened only when
    /// the DSNs or session settings changed.
    public func reconfigure(_ new: MonitorSettings) {
        let sampling = new.sampling, old = settings.sampling
        if sampling.targetDSN != old.targetDSN || sampling.session != old.session {
            target?.close(); target = nil
            reader.close()
            reader = SnapshotReader(options: sampling.snapshot, conninfo: sampling.targetDSN, settings: sampling.session, clock: clock)
        }
        writer.reconfigure(new.writer(recordSource: recordSource, decidedBy: decidedBy))
        if sampling.serverLogPath != old.serverLogPath || sampling.serverLogFormat != old.serverLogFormat {
            serverLog = sampling.serverLogPath.map { ServerLogReader(path: $0, format: sampling.serverLogFormat) }
        }
        reader.options = sampling.snapshot
        machine.heartbeatSeconds = new.vault.heartbeatSeconds
        settings = new
    }

    /// The pids of lockvault's own connections (never blockers to act on).
    public func ownPids() -> Set<Int32> {
        Set([target?.backendPID ?? 0, writer.backendPID].filter { $0 != 0 })
    }

    /// Stops the running cycle, from any thread (the daemon's SIGTERM): cancels the statement it
    /// waits for on the monitored cluster or the vault, and keeps it from writing more. The
    /// cycle returns at once with the cancelled step's failure; what it buffered is written (or
    /// spooled) by ``writeBuffered()`` at shutdown. Cycles after this one run normally.
    public nonisolated func interrupt() { stopping.interrupt() }

    /// Runs one cycle: never throws; problems are in the outcome (and the log).
    public func runCycle(write: Bool = true) -> CycleOutcome {
        stopping.begin(target: target?.canceller, vault: writer.canceller)
        defer { stopping.end() }
        return cycle(write: write)
    }

    private func cycle(write: Bool) -> CycleOutcome {
        let started = clock.now()
        var outcome = CycleOutcome(snapshot: nil, assessments: [], forest: [], deadlocks: [], cycleMilliseconds: 0,
                                   pendingWrites: writer.pending, droppedRecords: writer.lost)

        // 1. Sample the target.
        let snapshot: LockSnapshot
        do {
            let conn = try targetConnection()
            stopping.watch(target: conn.canceller)
            try stopping.check()
            snapshot = try reader.read(conn, monitorPids: ownPids(), watch: episodes.watchedPids)
        } catch {
            if stopping.isInterrupted { return finished(outcome, started: started) }
            let failure = MonitorFailure.classify(error, side: .target, role: target?.user)
            if target != nil { logger.warning("lost the monitored cluster", metadata: ["error": "\(failure.message)"]) }
            let facts = (error as? PostgresError).map(PostgresFailureFacts.init)
            if machine.sampleFailed(failure, facts: facts, connectionHealthy: target?.isHealthy() == true, at: clock.date()) == .reconnect {
                target?.close(); target = nil
            }
            outcome.targetFailure = failure
            // Cycles buffered earlier don't wait for the target: the vault may be elsewhere.
            if write { outcome.vaultFailure = writer.flush() }
            return finished(outcome, started: started)
        }

        // 2. Understand it.
        let graph = WaitGraph(snapshot)
        outcome.snapshot = snapshot
        outcome.assessments = BlockerAssessment.assess(snapshot, policy: settings.severity, graph: graph)
        outcome.forest = graph.forest
        outcome.deadlocks = observeDeadlocks(snapshot, graph: graph, write: write)

        // 3. The kill rule for every blocker (the vault shows it); the resolver acts on its
        //    candidates, if configured.
        let scope = SignalScope(ownPids: snapshot.monitorPids.union(ownPids()), ownApplicationName: settings.sampling.session.applicationName,
                                allowSuperuser: settings.resolve.allowSuperuser)
        (outcome.rulings, outcome.decisions) = resolver.run(outcome.assessments, policy: settings.resolve, scope: scope, target: target,
                                                            at: snapshot.capturedAt, logger: logger)

        // 4. The gap this sample ends (an outage, or this process's own start after downtime:
        //    only then is the vault asked when it last heard of the cluster). Cycles spooled
        //    before a restart are part of the record: the downtime starts after them.
        let lastRecorded = write && machine.wantsLastRecordedCycle
            ? [writer.lastRecordedCycle(systemIdentifier: snapshot.systemIdentifier), writer.newestPending].compactMap { $0 }.max() : nil
        let gap = machine.sampled(at: snapshot.capturedAt, lastRecordedCycle: lastRecorded)

        // 5. Blocking episodes (a cleared alert names its episode), across that gap.
        observeEpisodes(&outcome, graph: graph, gap: gap, write: write)

        // 6. Alerts, so the alert trail goes into this cycle's record (one write path).
        if let alerting { (outcome.alerts, outcome.alertDeliveries) = alerting.alerts(for: outcome) }

        // 7. Record it, with that gap.
        outcome.cycleMilliseconds = milliseconds(since: started)
        if write {
            writer.add(outcome, graph: graph, gap: gap)
            // Stopping: the shutdown writes (or spools) it; a write cancelled half-way is rolled back.
            if !stopping.isInterrupted {
                stopping.watch(vault: writer.canceller)
                outcome.vaultFailure = writer.flush()
            }
        }
        return finished(outcome, started: started)
    }

    /// This cycle's deadlocks, from the wait graph and the server log. The first cycle of a
    /// process resumes from the vault's last counters, so deadlocks while nobody sampled
    /// (between cron runs, across a restart) are counted.
    private func observeDeadlocks(_ snapshot: LockSnapshot, graph: WaitGraph, write: Bool) -> [DeadlockEvent] {
        let reports = serverLog?.read(at: snapshot.capturedAt, target: target, logger: logger) ?? []
        var recorded: [String: RecordedDeadlockCount]?
        if write && deadlocks.wantsRecordedBaseline {
            do {
                recorded = try writer.recordedDeadlockCounts(systemIdentifier: snapshot.systemIdentifier)
            } catch {
                // The first reading is then the baseline: deadlocks meanwhile go uncounted.
                logger.warning("could not read the vault's last deadlock counters; deadlocks since the last recorded cycle are not counted",
                               metadata: ["error": "\(MonitorFailure.classify(error, side: .vault).message)"])
            }
        }
        let events = deadlocks.observe(snapshot, graph: graph, reports: reports, recorded: recorded,
                                       databaseNames: ServerLogReader.databaseNames(for: reports, target: target))
        for event in events {
            logger.warning("deadlock", metadata: [
                "database": "\(event.database)", "deadlock.pids": "\(event.pids.sorted())", "deadlock.sources": "\(event.sources.sorted().map(\.rawValue))",
            ])
        }
        return events
    }

    /// This cycle's episode events. The first cycle of a process that writes continues the
    /// episodes the vault holds open (after the spooled cycles of the process before it are
    /// written, so that theirs are among them).
    private func observeEpisodes(_ outcome: inout CycleOutcome, graph: WaitGraph, gap: ObservationGap?, write: Bool) {
        guard let snapshot = outcome.snapshot else { return }
        if write && episodes.wantsRecorded {
            _ = writer.flush()
            do {
                episodes.adopt(try writer.openEpisodes(systemIdentifier: snapshot.systemIdentifier))
            } catch {
                // Then an episode open across the restart is found again by its id only when its
                // first waiter still waits; else it starts anew.
                logger.warning("could not read the vault's open blocking episodes; an episode in the middle of this restart may be recorded twice",
                               metadata: ["error": "\(MonitorFailure.classify(error, side: .vault).message)"])
            }
        }
        let decisions = outcome.decisions.map { d in
            EpisodeDecision(participant: d.decision.assessment.participant, action: d.decisionName, executed: d.executedSignal, outcome: d.outcomeText)
        }
        outcome.episodeEvents = episodes.observe(EpisodeCycle(snapshot: snapshot, graph: graph, assessments: outcome.assessments, decisions: decisions,
                                                              deadlocks: outcome.deadlocks, gap: gap))
        outcome.episodes = episodes.known
        outcome.openEpisodes = episodes.open.count
        for event in outcome.episodeEvents {
            if case .ended(let e) = event {
                logger.info("blocking episode ended", metadata: [
                    "episode.id": "\(e.id)", "episode.ended_by": "\(e.endedBy?.rawValue ?? "")", "root.pid": "\(e.root.pid.map(String.init) ?? "")",
                    "waiting_sessions": "\(e.waiters.count)", "wait_seconds_total": "\(String(format: "%.1f", e.waitSecondsTotal))",
                    "duration_seconds": "\(String(format: "%.1f", e.durationSeconds))",
                ])
            }
        }
    }

    private func finished(_ outcome: CycleOutcome, started: ContinuousClock.Instant) -> CycleOutcome {
        var outcome = outcome
        outcome.pendingWrites = writer.pending
        outcome.droppedRecords = writer.lost
        outcome.cycleMilliseconds = milliseconds(since: started)
        return outcome
    }

    /// Writes buffered cycles without sampling (at shutdown, or to drain a backlog): the same
    /// order, budget and backoff as a cycle's write. Returns what is still buffered and why,
    /// if the vault could not be written.
    public func writeBuffered() -> (pending: Int, failure: MonitorFailure?) {
        let failure = writer.flush()
        return (writer.pending, failure)
    }

    /// Buffered cycles that are also in the spool (they survive a restart).
    public var spooledRecords: Int { writer.spooled }

    private func targetConnection() throws -> PostgresConnection {
        if let target, !target.isClosed { return target }
        if case .wait(_, let ceiling) = machine.connect(at: clock.now()) {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(ceiling) before reconnecting")
        }
        do {
            let conn = try MonitorFailure.connect(.target, conninfo: settings.sampling.targetDSN, settings: settings.sampling.session)
            target = conn
            logger.info("connected to the monitored cluster", metadata: ["dsn": "\(conn.redactedConninfo)", "pid": "\(conn.backendPID)"])
            return conn
        } catch {
            machine.connectFailed(at: clock.now())
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
        do { _ = try writer.vault() } catch { throw MonitorFailure.classify(error, side: .vault) }
    }

    /// Runs `body` on the vault connection (scheduled analysis/cleanup, status): same thread as
    /// the cycles, so it never overlaps a cycle's transaction.
    public func withVault<T: Sendable>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try body(writer.vault())
    }

    /// Closes the connections and ends the monitor's thread once this call returns. Buffered
    /// cycles not yet written are lost (``writeBuffered()`` first). A call made after it still
    /// runs, on a thread that ends again when it is done.
    public func close() {
        target?.close(); target = nil
        writer.close()
        reader.close()
        executor.shutdown()
    }

    /// Whether the monitor's thread is alive (it ends after ``close()``).
    public nonisolated var threadIsRunning: Bool { executor.isRunning }

    private func milliseconds(since start: ContinuousClock.Instant) -> Double {
        (clock.now() - start).milliseconds
    }
}

extension MonitorSettings {
    /// What the Monitor's vault writer works with.
    func writer(recordSource: String, decidedBy: String) -> VaultWriter.Configuration {
        VaultWriter.Configuration(dsn: vault.dsn ?? sampling.targetDSN, session: sampling.session, limits: vault.limits,
                                  spoolDirectory: vault.spoolDirectory, spoolMaxBytes: vault.spoolMaxMB << 20,
                                  context: RecordContext(clusterName: clusterName, recordSource: recordSource, decidedBy: decidedBy,
                                                         killThresholdSeconds: resolve.killThresholdSeconds))
    }
}
