/// A word of a PostgreSQL catalog column (`pg_locks.locktype`, `pg_locks.mode`,
/// `pg_stat_activity.state`) as an enum: the words lockvault knows are cases, any other is kept
/// as the server wrote it (a newer server's word is shown and stored unchanged). The word is
/// also the value's encoding, so the vault and the spool hold PostgreSQL's own text.
public protocol CatalogWord: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A known case for the word, or the word kept as it is.
    init(_ text: String)
}

extension CatalogWord {
    public init(from decoder: any Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The known cases by their word, for `init(_:)`: read from `description`, the one place a
    /// case's word is written, so parsing and printing cannot disagree.
    static func byWord(_ known: [Self]) -> [String: Self] {
        Dictionary(uniqueKeysWithValues: known.map { ($0.description, $0) })
    }
}
