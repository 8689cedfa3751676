import Foundation
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Every column of every view in `lock_monitoring` (the dashboards and whatever else a DBA
    /// reads) says what it means in `\d+`: a `COMMENT ON COLUMN` in the view's own sql/views file.
    @Suite struct ViewCommentsLiveTests {
        @Test func everyViewColumnHasAComment() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let columns = try conn.query("""
                    SELECT c.relname::text AS view, a.attname::text AS column, col_description(c.oid, a.attnum) AS comment
                    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind IN ('v', 'm')
                    ORDER BY c.relname, a.attnum
                    """)
                let views = Set(try columns.map { try $0.decode("view", as: String.self) })
                #expect(views.filter { $0.hasSuffix("_dashboard") }.count >= 6, "the dashboards are there to check: \(views.sorted())")
                let uncommented = try columns.compactMap { row -> String? in
                    let comment = try row.decode("comment", as: String?.self)
                    guard comment?.trimmingCharacters(in: .whitespaces).isEmpty ?? true else { return nil }
                    return "\(try row.decode("view", as: String.self)).\(try row.decode("column", as: String.self))"
                }
                #expect(uncommented.isEmpty, "columns without a COMMENT ON COLUMN: \(uncommented.joined(separator: ", "))")
                let viewsWithoutComment = try conn.query("""
                    SELECT c.relname::text AS view FROM pg_class c
                    WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind IN ('v', 'm') AND obj_description(c.oid, 'pg_class') IS NULL
                    """).map { try $0.decode("view", as: String.self) }
                #expect(viewsWithoutComment.isEmpty, "views without a COMMENT ON VIEW: \(viewsWithoutComment)")
            }
        }
    }
}
