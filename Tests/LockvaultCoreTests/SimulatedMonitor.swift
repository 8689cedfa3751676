import Foundation
@testable import LockvaultCore

/// Drives ``TargetStateMachine`` and ``VaultStateMachine`` the way the Monitor and the
/// VaultWriter do (the writer's loop itself, ``VaultDriver/drive(_:)``) — one cycle a second, doing whatever the vault side asks against a simulated
/// vault and spool directory — with both clocks in the test's hands.
///
/// A cycle is its number; its rows are `rows(cycle)` (by default one row that changes every
/// cycle, so every cycle is written). A spooled cycle's document is its number as text.
struct SimulatedMonitor: VaultDriver {
    var target: TargetStateMachine
    var vault: Machine
    /// Monotonic time (backoff, flush budget).
    var now = ContinuousClock.now
    /// Wall-clock time of the next sample.
    var wall = Date(timeIntervalSince1970: 1_800_000_000)
    var vaultUp = true
    /// Cycle numbers the vault refuses (a check constraint).
    var refused: Set<Int> = []
    /// Cycle numbers that cannot be encoded.
    var unencodable: Set<Int> = []
    /// The rows of each cycle, by key (what the vault keys and compares).
    var rows: (Int) -> [String: UInt8] = { ["lock": UInt8($0 % 256)] }
    /// Cycles that carry events (an alert raised, a delivery finished, a deadlock): the vault
    /// must get them even when none of their rows changed.
    var events: Set<Int> = []
    /// What one vault call costs (monotonic time).
    var writeCost: Duration = .milliseconds(10)
    /// What the vault holds, in order: the cycle, the gap and the plan it was written with.
    var written: [(cycle: Int, gap: ObservationGap?, plan: VaultChanges<String>.Plan)] = []
    /// Calls to the vault (connects and writes), including failed ones.
    var vaultCalls = 0
    /// The spool directory: sequence → cycle, and the bytes of each file.
    var files: [UInt64: Int] = [:]
    var fileBytes = 100
    var spoolWritable = true
    /// Every action taken, in order, for tests of the order itself.
    var trace: [String] = []
    var notices: [VaultNotice] = []
    var capturedAt: [Int: Date] = [:]

    static let unavailable = MonitorFailure(code: .unavailable, message: "cannot reach the vault: connection refused")
    static let refusedFacts = PostgresFailureFacts(stage: .connect, connectionLost: true, message: "connection refused")
    static let checkFacts = PostgresFailureFacts(stage: .statement, sqlState: "23514", message: "new row violates check constraint")

    init(maxBufferedCycles: Int = 3600, heartbeatSeconds: Double = 60, spoolMaxBytes: Int? = nil, random: Double = 0.5) {
        target = TargetStateMachine(heartbeatSeconds: heartbeatSeconds, random: { random })
        vault = Machine(limits: VaultLimits(maxBufferedCycles: maxBufferedCycles, flushBudget: .milliseconds(500), heartbeatSeconds: heartbeatSeconds),
                        spoolMaxBytes: spoolMaxBytes, random: { random })
    }

    /// One cycle that sampled the target: records it and flushes. Returns the vault failure.
    @discardableResult
    mutating func sampled(_ cycle: Int, lastRecordedCycle: Date? = nil) -> MonitorFailure? {
        capturedAt[cycle] = wall
        let gap = target.sampled(at: wall, lastRecordedCycle: lastRecordedCycle)
        let digests = VaultRowDigests(rows: rows(cycle).mapValues { [$0] }, summary: [0], capturedAt: wall, hasEvents: events.contains(cycle))
        vault.cycleBuilt(cycle, digests: digests, capturedAt: wall, gap: gap)
        let failure = flush()
        tick()
        return failure
    }

    /// One cycle that could not sample the target.
    @discardableResult
    mutating func targetDown(reason: String = "connection refused") -> MonitorFailure? {
        _ = target.sampleFailed(MonitorFailure(code: .unavailable, message: reason), facts: Self.refusedFacts, connectionHealthy: false, at: wall)
        let failure = flush()
        tick()
        return failure
    }

    mutating func tick(_ seconds: Double = 1) {
        now += .milliseconds(Int64(seconds * 1000))
        wall += seconds
    }

    mutating func flush() -> MonitorFailure? {
        run(vault.flush(at: now))
        return vault.failure
    }

    /// Does what the vault side asks until it waits: the VaultWriter's own loop
    /// (``VaultDriver/drive(_:)``), against the simulated vault and spool below.
    mutating func run(_ first: Machine.Action) {
        drive(first)
    }

    /// A new process after a kill -9: a fresh machine that finds this one's spool files.
    func restarted() -> SimulatedMonitor {
        var next = SimulatedMonitor(maxBufferedCycles: vault.limits.maxBufferedCycles, heartbeatSeconds: vault.limits.heartbeatSeconds,
                                    spoolMaxBytes: vault.spool?.maxBytes)
        next.now = now
        next.wall = wall
        next.rows = rows
        next.events = events
        let spooled = vault.buffer.records.filter { files[$0.sequence] != nil }
        let cycles = spooled.map { Machine.Cycle(content: .spooled(document: "\(Self.cycle(of: $0))"), capturedAt: $0.capturedAt, gap: $0.gap,
                                                  lost: $0.lost, sequence: $0.sequence) }
        next.vault.restore(cycles, files: Dictionary(uniqueKeysWithValues: spooled.map { ($0.sequence, VaultSpool.Entry(lost: $0.lost, bytes: fileBytes)) }))
        next.notices = next.vault.takeNotices()
        next.files = files
        next.capturedAt = capturedAt
        return next
    }

    static func cycle(of pending: Machine.Cycle) -> Int {
        switch pending.content {
        case .built(let cycle, _): return cycle
        case .spooled(let document): return Int(document)!
        }
    }

    var writtenCycles: [Int] { written.map(\.cycle) }
    var gaps: [(cycle: Int, gap: ObservationGap)] { written.compactMap { w in w.gap.map { (w.cycle, $0) } } }
}

/// The simulated vault and spool directory: the I/O of ``VaultDriver``.
extension SimulatedMonitor {
    typealias Rows = Int
    typealias Key = String

    var machine: Machine {
        get { vault }
        set { vault = newValue }
        _modify { yield &vault }
    }

    var driverNow: ContinuousClock.Instant { now }

    mutating func openVault() -> MonitorFailure? {
        vaultCalls += 1
        now += writeCost
        trace.append("connect")
        return vaultUp ? nil : Self.unavailable
    }

    mutating func writeVault(_ pending: Machine.Cycle, plan: VaultChanges<String>.Plan, gap: ObservationGap?) -> VaultWriteOutcome {
        let cycle = Self.cycle(of: pending)
        if unencodable.contains(cycle) { return .unencodable(reason: "NaN") }
        vaultCalls += 1
        now += writeCost
        trace.append("write \(cycle)")
        if !vaultUp { return .failed(Self.unavailable, facts: Self.refusedFacts, connectionHealthy: false) }
        if refused.contains(cycle) { return .failed(Self.checkFacts.classify(side: .vault), facts: Self.checkFacts, connectionHealthy: true) }
        written.append((cycle, gap, plan))
        return .written(summaryAt: pending.capturedAt)
    }

    mutating func spoolCycle(_ pending: Machine.Cycle, room: Int) -> VaultSpoolOutcome {
        if !spoolWritable { return .failed(reason: "EROFS") }
        if fileBytes > room { return .full }
        files[pending.sequence] = Self.cycle(of: pending)
        trace.append("spool \(pending.sequence)")
        return .spooled(bytes: fileBytes)
    }

    mutating func removeSpooled(sequence: UInt64) {
        files[sequence] = nil
        trace.append("unspool \(sequence)")
    }

    mutating func closeVault() {
        trace.append("disconnect")
    }

    mutating func report(_ notices: [VaultNotice]) {
        self.notices += notices
    }
}
