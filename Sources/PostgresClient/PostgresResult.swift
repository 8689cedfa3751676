/// The rows of a statement, copied out of libpq into Swift values so they can cross threads
/// and outlive the connection.
public struct PostgresResult: Sendable, RandomAccessCollection {
    /// Column names, in order.
    public let columns: [String]
    /// Column type OIDs, in order (e.g. 23 for int4), for callers that need to tell types apart.
    public let columnTypes: [UInt32]
    /// Rows affected, for INSERT/UPDATE/DELETE (`PQcmdTuples`); 0 otherwise.
    public let affectedRows: Int
    let cells: [[String?]]
    let index: ColumnIndex

    init(columns: [String], columnTypes: [UInt32], cells: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.columnTypes = columnTypes
        self.cells = cells
        self.affectedRows = affectedRows
        self.index = ColumnIndex(columns)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { cells.count }
    public subscript(position: Int) -> PostgresRow { PostgresRow(values: cells[position], index: index) }
}

/// Name → position, shared by all rows of a result.
final class ColumnIndex: Sendable {
    let names: [String]
    let positions: [String: Int]
    init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
    }
}

/// One row. Decode columns by name or position into the Swift type you expect; ask for an
/// `Optional` to accept NULL.
public struct PostgresRow: Sendable {
    let values: [String?]
    let index: ColumnIndex

    /// The raw text of a column (nil for NULL), for diagnostics.
    public func text(_ column: String) -> String? {
        index.positions[column].flatMap { values[$0] }
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard let position = index.positions[column] else {
            throw PostgresError(code: .decodingFailed, message: "no column named \"\(column)\" in the result (columns: \(index.names.joined(separator: ", ")))")
        }
        return try decode(position, as: type)
    }

    public func decode<T: PostgresDecodable>(_ position: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard values.indices.contains(position) else {
            throw PostgresError(code: .decodingFailed, message: "column index \(position) is out of range (\(values.count) columns)")
        }
        let name = index.names[position]
        guard let text = values[position] else {
            if let null = T.postgresNull { return null }
            throw PostgresError(code: .decodingFailed, message: "column \"\(name)\" is NULL; decode as \(T.self)? to accept NULL")
        }
        guard let value = T.decode(postgresText: text) else {
            let sample = text.count > 40 ? String(text.prefix(40)) + "…" : text
            throw PostgresError(code: .decodingFailed, message: "column \"\(name)\": cannot decode \"\(sample)\" as \(T.self)")
        }
        return value
    }
}
