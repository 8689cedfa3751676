public import Foundation

/// Cycle records that will never reach the vault, to be reported as one gap by the record
/// written after them.
public struct LostStretch: Sendable, Hashable, Codable {
    /// The earliest moment not observed: the first lost sample, or the start of an outage it
    /// reported.
    public var start: Date
    public var dropped = 0
    public var bufferLimit = 0
    public var rejected = 0
    public var rejection: String?
    /// A target outage one of the lost records reported.
    public var outage: String?

    /// Covers `records` (and the losses they carried themselves).
    init<Rows, Key>(_ records: [PendingCycle<Rows, Key>], start: Date) {
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
    public var reason: String {
        var parts: [String] = []
        if dropped > 0 { parts.append("vault unavailable: \(dropped) cycle record\(dropped == 1 ? "" : "s") dropped (buffer limit \(bufferLimit))") }
        if rejected > 0 { parts.append("vault rejected \(rejected) cycle record\(rejected == 1 ? "" : "s"): \(rejection ?? "")") }
        if let outage { parts.append(outage) }
        return parts.joined(separator: "; ")
    }
}

/// A cycle waiting for the vault: what is written, when it was sampled, the gap it carries and
/// its place in the order of cycles.
public struct PendingCycle<Rows, Key: Hashable & Sendable> {
    /// What is written: the rows this process built, or a document a process before it spooled.
    public enum Content {
        /// Built by this process: the rows, and their digests (what ``VaultChanges`` compares,
        /// so that only what changed is sent).
        case built(Rows, digests: VaultRowDigests<Key>)
        /// Replayed from the spool: the whole document as the process before the restart encoded
        /// it. Nothing is known then of what the vault holds, so it is always written whole.
        case spooled(document: String)
    }

    public var content: Content
    public var capturedAt: Date
    /// The gap this cycle reports itself (an outage that ended with its sample).
    public var gap: ObservationGap?
    /// Cycles before this one that will never be written; its gap grows to cover them.
    public var lost: LostStretch?
    /// Its place in the order of cycles, across restarts (the spool's file names).
    public var sequence: UInt64 = 0

    public init(content: Content, capturedAt: Date, gap: ObservationGap?, lost: LostStretch?, sequence: UInt64) {
        self.content = content
        self.capturedAt = capturedAt
        self.gap = gap
        self.lost = lost
        self.sequence = sequence
    }

    /// The digests of a cycle this process built (nil for one from the spool).
    public var digests: VaultRowDigests<Key>? {
        if case .built(_, let digests) = content { return digests }
        return nil
    }

    /// The gap to write with this cycle: its own, widened over the lost cycles before it.
    public var gapToWrite: ObservationGap? {
        guard let lost else { return gap }
        let start = min(lost.start, gap?.start ?? lost.start, capturedAt)
        let reason = [lost.reason, gap?.reason].compactMap { $0 }.filter { !$0.isEmpty && $0 != lost.outage }.joined(separator: "; ")
        return ObservationGap(start: start, end: capturedAt, reason: reason)
    }
}

extension PendingCycle: Sendable where Rows: Sendable {}
extension PendingCycle.Content: Sendable where Rows: Sendable {}

/// The ordered, bounded buffer of cycle records the vault has not taken yet.
///
/// Beyond ``limit`` the oldest records are dropped, and the record that is then oldest carries
/// a gap covering them. A record the vault refuses is dropped the same way. When nothing is
/// buffered behind a lost record, the next record appended carries the gap.
public struct VaultBuffer<Rows, Key: Hashable & Sendable> {
    public var limit: Int
    public private(set) var records: [PendingCycle<Rows, Key>] = []
    /// Cycle records dropped (buffer full or refused) since the buffer was made.
    public private(set) var lostTotal = 0
    /// Losses not yet carried by a buffered record.
    public private(set) var stranded: LostStretch?
    /// The sequence number of the next record appended.
    public private(set) var nextSequence: UInt64 = 1

    public init(limit: Int) {
        self.limit = limit
    }

    public var count: Int { records.count }
    public var isEmpty: Bool { records.isEmpty }
    /// The next record to write, with the gap it must carry.
    public var head: PendingCycle<Rows, Key>? { records.first }

    /// Appends a cycle; returns how many of the oldest were dropped to stay within the limit.
    @discardableResult
    public mutating func append(_ content: PendingCycle<Rows, Key>.Content, capturedAt: Date, gap: ObservationGap?) -> Int {
        records.append(PendingCycle(content: content, capturedAt: capturedAt, gap: gap, lost: nil, sequence: nextSequence))
        nextSequence += 1
        if records.count == 1, let stranded {
            records[0].lost = stranded
            self.stranded = nil
        }
        return dropOverLimit()
    }

    /// Records from before a restart (the spool), oldest first: they go before everything
    /// appended after, keeping their sequence numbers. Beyond ``limit`` the oldest are dropped
    /// as usual.
    public mutating func restore(_ restored: [PendingCycle<Rows, Key>]) {
        let ordered = restored.sorted { $0.sequence < $1.sequence }
        records = ordered + records
        if let last = ordered.last { nextSequence = max(nextSequence, last.sequence + 1) }
        dropOverLimit()
    }

    /// Drops the oldest records beyond ``limit``; the record then oldest carries their gap.
    @discardableResult
    private mutating func dropOverLimit() -> Int {
        let limit = max(1, self.limit)
        guard records.count > limit else { return 0 }
        let dropped = Array(records.prefix(records.count - limit))
        records.removeFirst(dropped.count)
        lostTotal += dropped.count
        var stretch = LostStretch(dropped, start: dropped[0].capturedAt)
        stretch.dropped += dropped.count
        stretch.bufferLimit = max(stretch.bufferLimit, limit)
        carry(stretch)
        return dropped.count
    }

    /// The vault took the head record.
    public mutating func headWritten() {
        guard !records.isEmpty else { return }
        records.removeFirst()
    }

    /// The vault refused the head record (`reason`): it is dropped and the next record carries
    /// the gap.
    public mutating func headRefused(reason: String) {
        guard !records.isEmpty else { return }
        let refused = records.removeFirst()
        lostTotal += 1
        var stretch = LostStretch([refused], start: refused.capturedAt)
        stretch.rejected += 1
        stretch.rejection = stretch.rejection ?? reason
        carry(stretch)
    }

    /// The record now at the head — or, if none, the next one appended — carries the gap for
    /// records that will never be written.
    private mutating func carry(_ stretch: LostStretch) {
        if records.isEmpty {
            stranded = stranded.map { $0.merged(stretch) } ?? stretch
        } else {
            records[0].lost = records[0].lost.map { $0.merged(stretch) } ?? stretch
        }
    }
}

extension VaultBuffer: Sendable where Rows: Sendable {}
