/// Which lock modes conflict: PostgreSQL's table of conflicting lock modes (lock.c's
/// `LockConflicts`, the table in the documentation's "Explicit Locking" chapter). The same table
/// governs every lock type, relation or not: tuple, transaction id and advisory locks conflict by
/// mode exactly as tables do.
extension LockMode {
    /// Whether a lock in `self` and one in `other` on the same target cannot both be held by
    /// different transactions. Symmetric. Modes outside the eight (`SIReadLock` and the like)
    /// never wait in the lock manager, so they conflict with nothing.
    public func conflicts(with other: LockMode) -> Bool {
        guard strength > 0, other.strength > 0 else { return false }
        return Self.conflictMasks[strength] & (1 << other.strength) != 0
    }

    /// Bit n set: conflicts with the mode of strength n (1 = AccessShare … 8 = AccessExclusive).
    private static let conflictMasks: [Int] = [
        0,
        mask(8),                        // AccessShare
        mask(7, 8),                     // RowShare
        mask(5, 6, 7, 8),               // RowExclusive
        mask(4, 5, 6, 7, 8),            // ShareUpdateExclusive
        mask(3, 4, 6, 7, 8),            // Share
        mask(3, 4, 5, 6, 7, 8),         // ShareRowExclusive
        mask(2, 3, 4, 5, 6, 7, 8),      // Exclusive
        mask(1, 2, 3, 4, 5, 6, 7, 8),   // AccessExclusive
    ]

    private static func mask(_ strengths: Int...) -> Int { strengths.reduce(0) { $0 | 1 << $1 } }
}
