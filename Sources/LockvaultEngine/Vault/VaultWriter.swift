public import Foundation
public import LockvaultCore
public import Logging
public import PostgresClient

/// Writes cycles to the vault: the libpq and file adapter of ``VaultStateMachine``
/// (LockvaultCore), which decides everything — buffering, backoff, gaps, what of a cycle is
/// sent, the spool. The writer opens the vault connection, runs record_cycle, writes and
/// removes spool files, and logs what the state machine has to say.
///
/// The daemon's Monitor, `lockvault sample` (through the Monitor) and the fleet bench use it.
/// Not Sendable: one thread at a time (the Monitor's, or one bench worker's); every call blocks it.
public final class VaultWriter {
    /// What the writer needs to know; the daemon builds it from the config file.
    public struct Configuration: Sendable, Equatable {
        /// Where history is written.
        public var dsn: String
        public var session: SessionSettings
        public var limits: VaultLimits
        /// Where buffered cycles are spooled so a restart during a vault outage loses none
        /// (nil = memory only). Read at start.
        public var spoolDirectory: String?
        /// The spool's bound in bytes; beyond it cycles stay in memory only.
        public var spoolMaxBytes: Int
        /// Who records the cycles, under which rules.
        public var context: RecordContext

        public init(dsn: String, session: SessionSettings, limits: VaultLimits = VaultLimits(), spoolDirectory: String? = nil,
                    spoolMaxBytes: Int = 256 << 20, context: RecordContext) {
            self.dsn = dsn
            self.session = session
            self.limits = limits
            self.spoolDirectory = spoolDirectory
            self.spoolMaxBytes = spoolMaxBytes
            self.context = context
        }
    }

    public private(set) var configuration: Configuration
    fileprivate var machine: VaultStateMachine<CycleRecord, VaultRowKey>
    private let spoolFiles: SpoolDirectory?
    /// Lock rows' keys and hash diffs from the previous cycle (most locks are carried unchanged).
    let lockRowMemo = LockRowMemo()
    private var connection: PostgresConnection?
    private let clock: MonitorClock
    private let logger: Logger

    /// Loads the spool, if one is configured: its cycles are written before any new one.
    public init(configuration: Configuration, logger: Logger, clock: MonitorClock = .system) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        machine = VaultStateMachine(limits: configuration.limits, spoolMaxBytes: configuration.spoolDirectory.map { _ in configuration.spoolMaxBytes },
                                    random: clock.random)
        spoolFiles = configuration.spoolDirectory.map(SpoolDirectory.init(path:))
        if let spoolFiles {
            let (cycles, files, unreadable) = spoolFiles.load()
            if !unreadable.isEmpty {
                logger.error("unreadable files in the spool were set aside (renamed *.unreadable); their cycles are not replayed", metadata: [
                    "spool": "\(spoolFiles.path)", "files": "\(unreadable.joined(separator: ","))",
                ])
            }
            machine.restore(cycles, files: files)
            logNotices()
        }
    }

    deinit {
        connection?.close()
    }

    /// Applies a new configuration. Another vault (or other session settings) closes the
    /// connection, and the next write is whole. The spool directory is read at start only.
    public func reconfigure(_ new: Configuration) {
        let vaultChanged = new.dsn != configuration.dsn || new.session != configuration.session
        let spool = (configuration.spoolDirectory, configuration.spoolMaxBytes)
        configuration = new
        (configuration.spoolDirectory, configuration.spoolMaxBytes) = spool
        machine.limits = new.limits
        if vaultChanged { run(machine.vaultChanged(at: clock.now())) }
    }

    /// Cycles waiting for the vault.
    public var pending: Int { machine.buffer.count }
    /// Cycles dropped (buffer full or refused) since the writer was made.
    public var lost: Int { machine.buffer.lostTotal }
    /// Buffered cycles that are also in the spool (they survive a restart).
    public var spooled: Int { machine.spool?.stored.count ?? 0 }
    /// The newest cycle waiting for the vault.
    public var newestPending: Date? { machine.newestBuffered }
    /// record_cycle statements run so far (a cycle with nothing new for the vault runs none).
    public private(set) var statementsRun = 0
    /// The backend pid of the vault connection (0: none open).
    public var backendPID: Int32 { connection.map(\.backendPID) ?? 0 }

    /// Builds the vault's rows of `outcome` (a cycle like the last one reuses its lock rows)
    /// and adds them, with the gap the cycle reports itself. Returns how many of the oldest
    /// cycles were dropped to stay within the buffer's bound. A cycle that sampled nothing adds nothing.
    @discardableResult
    public func add(_ outcome: CycleOutcome, gap: ObservationGap? = nil) -> Int {
        add(outcome, graph: nil, gap: gap)
    }

    /// The same, with the wait graph the Monitor built for the cycle already.
    @discardableResult
    func add(_ outcome: CycleOutcome, graph: WaitGraph?, gap: ObservationGap?) -> Int {
        guard let snapshot = outcome.snapshot else { return 0 }
        let record = CycleRecord(snapshot: snapshot, outcome: outcome, graph: graph ?? WaitGraph(snapshot), context: configuration.context,
                                 heartbeatSeconds: configuration.limits.heartbeatSeconds,
                                 bufferedCycles: pending, spooledCycles: spooled, memo: lockRowMemo)
        lockRowMemo.cycleEnded()
        let bulk = lockRowMemo.currentGeneration.map { lockRowMemo.bulk(record.locks, generation: $0) }
        let dropped = machine.cycleBuilt(record, digests: record.changeState(lockBulk: bulk), capturedAt: record.captured_at, gap: gap)
        logNotices()
        return dropped
    }

    /// Writes buffered cycles in order, each in its own transaction, until the buffer is empty
    /// or the flush budget is spent, stopping at the first failure; then makes the spool hold
    /// what is still buffered. Returns why the vault could not be written.
    @discardableResult
    public func flush() -> MonitorFailure? {
        if machine.isConnected, connection?.isClosed ?? true {
            connection = nil
            _ = machine.disconnected(at: clock.now())
        }
        run(machine.flush(at: clock.now()))
        return machine.failure
    }

    /// Cancels the statement running on the vault connection, from another thread (nil while unconnected).
    public var canceller: QueryCanceller? { connection?.canceller }

    /// The vault connection, opened (and checked) now if need be, subject to the backoff.
    public func vault() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        if case .wait(_, let ceiling) = machine.connect(at: clock.now()) {
            throw PostgresError(code: .connectionFailed, message: "waiting up to \(ceiling) before reconnecting to the vault")
        }
        switch open() {
        case .success(let conn):
            run(machine.connected(at: clock.now()))
            return conn
        case .failure(let failure):
            run(machine.connectFailed(failure, at: clock.now()))
            throw failure
        }
    }

    /// Closes the vault connection. Buffered cycles not yet written stay (``flush()`` first).
    public func close() {
        connection?.close()
        connection = nil
        if machine.isConnected { _ = machine.disconnected(at: clock.now()) }
    }

    /// Does what the state machine asks until it waits (``VaultDriver/drive(_:)``: the one loop,
    /// which the Core's tests run against a simulated vault).
    private func run(_ first: VaultStateMachine<CycleRecord, VaultRowKey>.Action) {
        var driver = Driver(writer: self)
        driver.drive(first)
    }

    /// A spool failure as the log shows it: the spool's own errors name the path and the
    /// system's reason; anything else only its type (it may carry a record's contents).
    static func describe(_ error: any Error) -> String {
        (error as? SpoolError)?.description ?? "\(type(of: error))"
    }

    /// The writer's I/O as the state machine's actions need it.
    private struct Driver: VaultDriver {
        typealias Rows = CycleRecord
        typealias Key = VaultRowKey
        let writer: VaultWriter

        var machine: VaultStateMachine<CycleRecord, VaultRowKey> {
            get { writer.machine }
            set { writer.machine = newValue }
            _modify { yield &writer.machine }
        }

        var driverNow: ContinuousClock.Instant { writer.clock.now() }

        func openVault() -> MonitorFailure? {
            if case .failure(let failure) = writer.open() { return failure }
            return nil
        }

        func writeVault(_ cycle: Machine.Cycle, plan: VaultChanges<VaultRowKey>.Plan, gap: ObservationGap?) -> VaultWriteOutcome {
            writer.write(cycle, plan: plan, gap: gap)
        }

        func spoolCycle(_ cycle: Machine.Cycle, room: Int) -> VaultSpoolOutcome {
            guard let spoolFiles = writer.spoolFiles else { return .failed(reason: "no spool directory") }
            do {
                let data = try spoolFiles.encode(cycle)
                guard data.count <= room else { return .full }
                try spoolFiles.write(data, sequence: cycle.sequence)
                return .spooled(bytes: data.count)
            } catch {
                return .failed(reason: VaultWriter.describe(error))
            }
        }

        func removeSpooled(sequence: UInt64) {
            do { try writer.spoolFiles?.remove(sequence: sequence) } catch {
                writer.logger.error("could not remove a cycle record from the spool", metadata: ["error": "\(VaultWriter.describe(error))"])
            }
        }

        func closeVault() {
            writer.connection?.close()
            writer.connection = nil
        }

        func report(_ notices: [VaultNotice]) {
            writer.log(notices)
        }
    }

    private func write(_ cycle: VaultStateMachine<CycleRecord, VaultRowKey>.Cycle, plan: VaultChanges<VaultRowKey>.Plan,
                       gap: ObservationGap?) -> VaultWriteOutcome {
        let document: String
        do {
            document = try cycle.document(plan, carrying: gap)
        } catch {
            return .unencodable(reason: "\(type(of: error)): the cycle's rows cannot be encoded as JSON")
        }
        guard let conn = connection else {
            return .failed(MonitorFailure(code: .unavailable, message: "the vault connection is closed"), facts: nil, connectionHealthy: false)
        }
        statementsRun += 1
        do {
            return .written(summaryAt: try Self.record(document, on: conn))
        } catch {
            let facts = (error as? PostgresError).map(PostgresFailureFacts.init)
            return .failed(MonitorFailure.classify(error, side: .vault, role: conn.user), facts: facts,
                           connectionHealthy: facts?.refusesRecord == true && conn.isHealthy())
        }
    }

    private func open() -> Result<PostgresConnection, MonitorFailure> {
        do {
            let conn = try MonitorFailure.connect(.vault, conninfo: configuration.dsn, settings: configuration.session)
            connection = conn
            return .success(conn)
        } catch {
            return .failure(MonitorFailure.classify(error, side: .vault))
        }
    }

    /// Writes one cycle document in its own transaction; writing the same one again changes
    /// nothing. Returns the last_cycle_at of the vault's current summary row for the cluster,
    /// as record_cycle answers it (what ``VaultChanges`` times the next heartbeat from).
    static func record(_ document: String, on conn: PostgresConnection) throws -> Date? {
        let result = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)::text AS stats", [document]) }
        guard let text = try? result.first?.decode("stats", as: String.self),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let epoch = (object["summary_at"] as? NSNumber)?.doubleValue else { return nil }
        return Date(timeIntervalSince1970: epoch)
    }

    private func logNotices() {
        log(machine.takeNotices())
    }

    private func log(_ notices: [VaultNotice]) {
        for notice in notices {
            switch notice {
            case .dropped(let count, let total, let limit):
                logger.error("vault buffer full: dropped the oldest cycle records; a gap is recorded for them", metadata: [
                    "dropped": "\(count)", "dropped_total": "\(total)", "buffer_limit": "\(limit)",
                ])
            case .replaying(let count, let oldest, let newest):
                logger.notice("found spooled cycle records from before the restart; they are written to the vault first, in order", metadata: [
                    "spooled": "\(count)", "spool": "\(spoolFiles?.path ?? "")",
                    "oldest": "\(PostgresTimestamp.format(oldest))", "newest": "\(PostgresTimestamp.format(newest))",
                ])
            case .replayed(let count):
                logger.notice("replayed the spooled cycle records from before the restart", metadata: ["replayed": "\(count)"])
            case .refused(let reason, let capturedAt):
                logger.error("the vault rejected a cycle record; it is skipped and recorded as a gap", metadata: [
                    "error": "\(reason)", "captured_at": "\(PostgresTimestamp.format(capturedAt))",
                ])
            case .unencodable(let reason):
                logger.error("could not encode the cycle record; it is skipped and recorded as a gap", metadata: ["error": "\(reason)"])
            case .writeFailed(let failure, let buffered):
                logger.warning("vault write failed; cycle records buffered", metadata: ["error": "\(failure.message)", "buffered": "\(buffered)"])
            case .spoolFull(let maxBytes, let spooled):
                logger.error("the spool is full: further buffered cycle records are kept in memory only, and lost if lockvault stops before the vault returns", metadata: [
                    "spool": "\(spoolFiles?.path ?? "")", "max_bytes": "\(maxBytes)", "spooled": "\(spooled)",
                ])
            case .spoolUnwritable(let reason):
                logger.error("cannot spool buffered cycle records: they are kept in memory only, and lost if lockvault stops before the vault returns", metadata: [
                    "spool": "\(spoolFiles?.path ?? "")", "error": "\(reason)",
                ])
            }
        }
    }
}
