extension Duration {
    /// This duration in milliseconds, with its fraction: how lockvault reports a time it
    /// measured (a cycle's `cycle_ms`, retention's steps, the bench). One place for the
    /// attoseconds arithmetic, so every figure is converted the same way.
    public var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }

    /// Whole milliseconds, truncated: what PostgreSQL's timeouts (`pg_terminate_backend`'s
    /// wait) and integer log fields take.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
