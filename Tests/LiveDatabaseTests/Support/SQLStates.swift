import PostgresClient

/// SQLSTATEs the tests wait for; lockvault itself never branches on them.
extension SQLState {
    static let lockNotAvailable = "55P03"
    static let deadlockDetected = "40P01"
}
