import Foundation

/// A serial executor backed by one dedicated OS thread.
///
/// libpq blocks the calling thread for the length of every network round trip. Running those
/// calls on Swift's cooperative pool (two threads on a 2-core machine) would stall unrelated
/// tasks — the watchdog pinger among them. An actor whose executor is one of these keeps each
/// connection's blocking work on a thread of its own.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    /// A thread is serving the queue.
    private var running = true
    private let name: String

    public init(name: String) {
        self.name = name
        startThread()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        if !running {
            // A job after shutdown (a late call on a closed actor) still runs, on a thread
            // that ends again once the queue is empty.
            running = true
            startThread()
        }
        condition.signal()
        condition.unlock()
    }

    /// Whether a thread is alive for this executor (false some time after ``shutdown()``).
    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    private func startThread() {
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.start()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread exit once the queued jobs have run.
    public func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                running = false
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }
}
