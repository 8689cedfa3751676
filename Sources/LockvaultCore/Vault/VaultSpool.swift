/// What the spool on disk must hold so a restart during a vault outage loses nothing: the
/// buffered cycles, one file each, as a contiguous run from the oldest. ``VaultStateMachine``
/// asks it (``next(for:)``) and turns its answers into actions for the file adapter.
///
/// - A record is spooled once it is still buffered after a cycle's flush (the vault did not
///   take it), and its file removed as soon as the vault has it, before the next is written:
///   after a crash only the record the vault took last can be replayed twice, and writing
///   that one again changes nothing (record_cycle is idempotent).
/// - The head's file is rewritten when it comes to carry a gap (records dropped before it).
/// - Bounded: the buffer's count bound, and ``maxBytes``. A record that does not fit, or
///   cannot be written, suspends spooling until the buffer is empty again, so the spool stays
///   contiguous and everything after its last record is covered by the restart's gap.
public struct VaultSpool: Sendable {
    public enum Action: Sendable, Equatable {
        /// Write (or rewrite) the file of the buffered record with this sequence number.
        case store(sequence: UInt64)
        /// Remove this file: the vault has the record, or it was dropped.
        case remove(sequence: UInt64)
    }

    /// What is on disk for one record.
    public struct Entry: Sendable, Hashable {
        public var lost: LostStretch?
        public var bytes: Int

        public init(lost: LostStretch?, bytes: Int) {
            self.lost = lost
            self.bytes = bytes
        }
    }

    public var maxBytes: Int
    public private(set) var stored: [UInt64: Entry] = [:]
    public private(set) var totalBytes = 0
    /// Why new records stay in memory only (spool full or unwritable); nil when spooling.
    public private(set) var suspended: String?

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Files found at start-up (their records go back into the buffer).
    public mutating func restored(_ entries: [UInt64: Entry]) {
        stored = entries
        totalBytes = entries.values.reduce(0) { $0 + $1.bytes }
    }

    /// The next thing to do to make the spool match `buffer`; nil when it does.
    public mutating func next<Rows, Key>(for buffer: VaultBuffer<Rows, Key>) -> Action? {
        let buffered = Set(buffer.records.map(\.sequence))
        if let gone = stored.keys.filter({ !buffered.contains($0) }).min() { return .remove(sequence: gone) }
        if buffer.isEmpty { suspended = nil; return nil }
        for record in buffer.records {
            if let entry = stored[record.sequence] {
                if entry.lost != record.lost { return .store(sequence: record.sequence) }
                continue
            }
            return suspended == nil ? .store(sequence: record.sequence) : nil
        }
        return nil
    }

    /// How many bytes the file of `sequence` may take within ``maxBytes``.
    public func room(for sequence: UInt64) -> Int {
        maxBytes - totalBytes + (stored[sequence]?.bytes ?? 0)
    }

    /// The file of `sequence` would not fit (``room(for:)``): spooling is suspended (the record
    /// stays in memory). Returns true when this suspends it (so it is reported once).
    @discardableResult
    public mutating func full() -> Bool {
        suspend("the spool is full (\(totalBytes) of \(maxBytes) bytes)")
    }

    /// The file of `sequence` is written and synced.
    public mutating func stored(sequence: UInt64, lost: LostStretch?, bytes: Int) {
        totalBytes += bytes - (stored[sequence]?.bytes ?? 0)
        stored[sequence] = Entry(lost: lost, bytes: bytes)
    }

    /// Writing a file failed: spooling is suspended. Returns true when this suspends it (so it
    /// is reported once, not every cycle).
    @discardableResult
    public mutating func storeFailed(reason: String) -> Bool {
        suspend("the spool is unwritable: \(reason)")
    }

    /// Suspends spooling for `reason` unless it is suspended already; true when this suspends it.
    private mutating func suspend(_ reason: String) -> Bool {
        guard suspended == nil else { return false }
        suspended = reason
        return true
    }

    /// The file of `sequence` is gone (or could not be removed: it is forgotten either way).
    public mutating func removed(sequence: UInt64) {
        if let entry = stored.removeValue(forKey: sequence) { totalBytes -= entry.bytes }
    }
}
