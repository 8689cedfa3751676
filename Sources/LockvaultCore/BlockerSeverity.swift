/// How badly a blocker is hurting the cluster.
public enum BlockerSeverity: String, Sendable, Hashable, Codable, Comparable, CaseIterable, CustomStringConvertible {
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"
    case critical = "CRITICAL"

    var rank: Int {
        switch self {
        case .low: 0
        case .medium: 1
        case .high: 2
        case .critical: 3
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    public var description: String { rawValue }

    /// One level up, capped at CRITICAL.
    public var escalated: Self {
        switch self {
        case .low: .medium
        case .medium: .high
        case .high, .critical: .critical
        }
    }
}

/// The knobs of severity classification; the config file's `severity:` section.
///
/// Defaults are chosen for an OLTP cluster where a lock wait of a few seconds is already
/// visible to users: a blocker becomes MEDIUM after 10 s, HIGH after 1 min, CRITICAL after
/// 5 min — or sooner when it holds up many sessions, sits idle in a transaction, or holds
/// ACCESS EXCLUSIVE (which blocks even plain reads).
public struct SeverityPolicy: Sendable, Hashable, Codable {
    public var mediumAfterSeconds: Double
    public var highAfterSeconds: Double
    public var criticalAfterSeconds: Double
    /// Blocking at least this many sessions (transitively) is at least HIGH.
    public var highBlockedSessions: Int
    /// Blocking at least this many sessions (transitively) is CRITICAL.
    public var criticalBlockedSessions: Int
    /// An idle-in-transaction blocker (or prepared transaction) reaches each time threshold at
    /// this fraction of it: nothing it is doing will release the lock.
    public var idleInTransactionFactor: Double
    /// Holding AccessExclusiveLock on what others wait for raises the level by one.
    public var exclusiveLockEscalates: Bool

    /// The defaults described above are written once, here, as the parameters' defaults.
    public init(
        mediumAfterSeconds: Double = 10, highAfterSeconds: Double = 60, criticalAfterSeconds: Double = 300,
        highBlockedSessions: Int = 5, criticalBlockedSessions: Int = 20, idleInTransactionFactor: Double = 0.5,
        exclusiveLockEscalates: Bool = true
    ) {
        self.mediumAfterSeconds = mediumAfterSeconds
        self.highAfterSeconds = highAfterSeconds
        self.criticalAfterSeconds = criticalAfterSeconds
        self.highBlockedSessions = highBlockedSessions
        self.criticalBlockedSessions = criticalBlockedSessions
        self.idleInTransactionFactor = idleInTransactionFactor
        self.exclusiveLockEscalates = exclusiveLockEscalates
    }

    /// The rule, in order:
    /// 1. by blocking duration `d` (the longest wait in the blocker's tree), with the time
    ///    thresholds scaled by `idleInTransactionFactor` for idle-in-transaction blockers:
    ///    d ≥ critical → CRITICAL, ≥ high → HIGH, ≥ medium → MEDIUM, else LOW;
    /// 2. at least HIGH when blocking ≥ `highBlockedSessions`, CRITICAL when ≥
    ///    `criticalBlockedSessions` (counted transitively);
    /// 3. one level more when it holds AccessExclusiveLock on a contended target.
    public func classify(blockingSeconds d: Double, blockedCount: Int, idleInTransaction: Bool, holdsAccessExclusive: Bool) -> BlockerSeverity {
        let f = idleInTransaction ? idleInTransactionFactor : 1
        var level: BlockerSeverity =
            d >= criticalAfterSeconds * f ? .critical
            : d >= highAfterSeconds * f ? .high
            : d >= mediumAfterSeconds * f ? .medium
            : .low
        if blockedCount >= criticalBlockedSessions { level = .critical }
        else if blockedCount >= highBlockedSessions { level = max(level, .high) }
        if exclusiveLockEscalates && holdsAccessExclusive { level = level.escalated }
        return level
    }
}
