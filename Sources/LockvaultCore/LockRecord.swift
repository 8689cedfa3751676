public import Foundation

/// `pg_locks.locktype`.
public enum LockType: CatalogWord {
    case relation, extend, frozenid, page, tuple, transactionid, virtualxid, spectoken, object, userlock, advisory, applyTransaction
    case unknown(String)

    static let known = byWord([.relation, .extend, .frozenid, .page, .tuple, .transactionid, .virtualxid, .spectoken, .object, .userlock,
                               .advisory, .applyTransaction])

    public init(_ text: String) { self = Self.known[text] ?? .unknown(text) }

    public var description: String {
        switch self {
        case .relation: "relation"
        case .extend: "extend"
        case .frozenid: "frozenid"
        case .page: "page"
        case .tuple: "tuple"
        case .transactionid: "transactionid"
        case .virtualxid: "virtualxid"
        case .spectoken: "spectoken"
        case .object: "object"
        case .userlock: "userlock"
        case .advisory: "advisory"
        case .applyTransaction: "applytransaction"
        case .unknown(let t): t
        }
    }
}

/// `pg_locks.mode`, ordered by strength (how much it conflicts with), weakest first.
public enum LockMode: CatalogWord, Comparable {
    case accessShare, rowShare, rowExclusive, shareUpdateExclusive, share, shareRowExclusive, exclusive, accessExclusive
    /// Modes of other lock kinds (e.g. SIReadLock for serializable predicate locks).
    case other(String)

    static let known = byWord([.accessShare, .rowShare, .rowExclusive, .shareUpdateExclusive, .share, .shareRowExclusive, .exclusive, .accessExclusive])

    public init(_ text: String) { self = Self.known[text] ?? .other(text) }

    public var description: String {
        switch self {
        case .accessShare: "AccessShareLock"
        case .rowShare: "RowShareLock"
        case .rowExclusive: "RowExclusiveLock"
        case .shareUpdateExclusive: "ShareUpdateExclusiveLock"
        case .share: "ShareLock"
        case .shareRowExclusive: "ShareRowExclusiveLock"
        case .exclusive: "ExclusiveLock"
        case .accessExclusive: "AccessExclusiveLock"
        case .other(let t): t
        }
    }

    var strength: Int {
        switch self {
        case .other: 0
        case .accessShare: 1
        case .rowShare: 2
        case .rowExclusive: 3
        case .shareUpdateExclusive: 4
        case .share: 5
        case .shareRowExclusive: 6
        case .exclusive: 7
        case .accessExclusive: 8
        }
    }

    /// The mode of a waiting lock not read yet (``LockRecord/unread(pid:waitEvent:)``).
    public static let unread = LockMode.other("not read yet")

    public static func < (lhs: LockMode, rhs: LockMode) -> Bool {
        lhs.strength != rhs.strength ? lhs.strength < rhs.strength : lhs.description < rhs.description
    }
}

/// The key an application passed to `pg_advisory_lock`, recovered from `pg_locks`.
///
/// `pg_advisory_lock(bigint k)` shows as classid = k >> 32, objid = k & 0xffffffff,
/// objsubid = 1; `pg_advisory_lock(int a, int b)` as classid = a, objid = b, objsubid = 2. The
/// view shows both halves as unsigned 32-bit numbers, so key -5 appears as classid 4294967295,
/// objid 4294967291; showing the key the application used is what lets a DBA find the code.
public enum AdvisoryKey: Sendable, Hashable, Codable, CustomStringConvertible {
    case bigint(Int64)
    case pair(Int32, Int32)

    public init?(classID: UInt32?, objID: UInt32?, objSubID: Int16?) {
        guard let classID, let objID, let objSubID else { return nil }
        switch objSubID {
        case 1: self = .bigint(Int64(bitPattern: UInt64(classID) << 32 | UInt64(objID)))
        case 2: self = .pair(Int32(bitPattern: classID), Int32(bitPattern: objID))
        default: return nil
        }
    }

    /// As the application wrote it: `42` or `(1, 2)`.
    public var description: String {
        switch self {
        case .bigint(let k): "\(k)"
        case .pair(let a, let b): "(\(a), \(b))"
        }
    }
}

/// One row of `pg_locks` that lockvault keeps.
public struct LockRecord: Sendable, Hashable, Codable {
    /// nil for a lock held by a prepared transaction.
    public var pid: Int32?
    public var lockType: LockType
    public var mode: LockMode
    public var granted: Bool
    public var fastpath: Bool
    /// When the wait began (PostgreSQL 14+; briefly NULL right after a wait starts).
    public var waitStart: Date?
    public var databaseOID: UInt32?
    public var databaseName: String?
    public var relationOID: UInt32?
    /// Schema-qualified name, resolved in the lock's own database; nil = unknown.
    public var relationName: String?
    public var page: Int32?
    public var tuple: Int16?
    public var virtualXID: String?
    public var transactionID: String?
    public var classID: UInt32?
    public var objID: UInt32?
    public var objSubID: Int16?
    public var virtualTransaction: String?

    public init(
        pid: Int32?, lockType: LockType, mode: LockMode, granted: Bool, fastpath: Bool = false, waitStart: Date? = nil,
        databaseOID: UInt32? = nil, databaseName: String? = nil, relationOID: UInt32? = nil, relationName: String? = nil,
        page: Int32? = nil, tuple: Int16? = nil, virtualXID: String? = nil, transactionID: String? = nil,
        classID: UInt32? = nil, objID: UInt32? = nil, objSubID: Int16? = nil, virtualTransaction: String? = nil
    ) {
        self.pid = pid
        self.lockType = lockType
        self.mode = mode
        self.granted = granted
        self.fastpath = fastpath
        self.waitStart = waitStart
        self.databaseOID = databaseOID
        self.databaseName = databaseName
        self.relationOID = relationOID
        self.relationName = relationName
        self.page = page
        self.tuple = tuple
        self.virtualXID = virtualXID
        self.transactionID = transactionID
        self.classID = classID
        self.objID = objID
        self.objSubID = objSubID
        self.virtualTransaction = virtualTransaction
    }

    public var advisoryKey: AdvisoryKey? {
        lockType == .advisory ? AdvisoryKey(classID: classID, objID: objID, objSubID: objSubID) : nil
    }

    /// What is locked, identity only (no holder, mode or grant): locks on the same target
    /// conflict with each other.
    public var target: LockTarget {
        LockTarget(lockType: lockType, databaseOID: databaseOID, relationOID: relationOID, page: page, tuple: tuple,
                   virtualXID: virtualXID, transactionID: transactionID, classID: classID, objID: objID, objSubID: objSubID)
    }

    /// A waiting lock known only from pg_stat_activity, whose `wait_event` names its lock type:
    /// what a wait learnt from `pg_blocking_pids()` shows until a pass over pg_locks reads it
    /// (``LockReadPlan``). Mode ``LockMode/unread``, no target, no `waitstart`.
    public static func unread(pid: Int32, waitEvent: String?) -> LockRecord {
        LockRecord(pid: pid, lockType: LockType(waitEvent ?? "unknown"), mode: .unread, granted: false)
    }

    /// A waiting lock whose target and mode are not read yet (``unread(pid:waitEvent:)``).
    public var isUnread: Bool { mode == .unread }

    /// For people: `relation public.orders`, `tuple (0,3) of public.t`, `transaction 1234`,
    /// `advisory key 42`.
    public var targetDescription: String {
        if isUnread { return "\(lockType) lock (target not read yet)" }
        let relation = relationName ?? relationOID.map { "relation oid \($0)\(databaseName.map { " in \($0)" } ?? "")" } ?? "unknown relation"
        switch lockType {
        case .relation: return "relation \(relation)"
        case .extend: return "extension of \(relation)"
        case .page: return "page \(page.map(String.init) ?? "?") of \(relation)"
        case .tuple: return "tuple (\(page.map(String.init) ?? "?"),\(tuple.map(String.init) ?? "?")) of \(relation)"
        case .transactionid: return "transaction \(transactionID ?? "?")"
        case .virtualxid: return "virtual transaction \(virtualXID ?? "?")"
        case .advisory: return advisoryKey.map { "advisory key \($0)" } ?? "advisory lock"
        case .object: return "object \(classID.map(String.init) ?? "?")/\(objID.map(String.init) ?? "?")"
        default: return "\(lockType) lock"
        }
    }
}

/// The identity of a lockable thing, for matching waiters with holders.
public struct LockTarget: Sendable, Hashable, Codable {
    public var lockType: LockType
    public var databaseOID: UInt32?
    public var relationOID: UInt32?
    public var page: Int32?
    public var tuple: Int16?
    public var virtualXID: String?
    public var transactionID: String?
    public var classID: UInt32?
    public var objID: UInt32?
    public var objSubID: Int16?
}
