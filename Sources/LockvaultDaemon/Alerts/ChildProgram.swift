import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// One run of an external program, the only way lockvault starts one.
///
/// Built on swift-subprocess, which resets the child's signal mask to empty and every signal's
/// disposition to the default: a child must not inherit what the daemon blocks or ignores
/// (SIGTERM and SIGHUP are trapped, SIGPIPE ignored). Its stdout and stderr are the daemon's own.
public struct ChildProgram: Sendable {
    /// `argv[0]` is an absolute path; no shell, no PATH search.
    public var argv: [String]

    public init(_ argv: [String]) { self.argv = argv }

    /// How the run ended.
    public enum Outcome: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// It overran its time and was killed.
        case timedOut(Duration)
        /// It could not be started at all (missing, not executable).
        case cannotStart(String)
    }

    /// Runs the program with `stdin` as its standard input and waits for it, at most `timeout`.
    public func run(stdin payload: [UInt8], timeout: Duration) async -> Outcome {
        guard let path = argv.first, !path.isEmpty else { return .cannotStart("no program given") }
        let arguments = Array(argv.dropFirst())
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        .path(FilePath(path)), arguments: Arguments(arguments),
                        input: .array(payload), output: .currentStandardOutput, error: .currentStandardError)
                    switch result.terminationStatus {
                    case .exited(let code): return .exited(code)
                    case .signaled(let signal): return .signalled(signal)
                    }
                } catch is CancellationError {
                    return nil
                } catch let error as SubprocessError {
                    // swift-subprocess names the executable and errno, never the arguments
                    // (which may carry a token).
                    return Task.isCancelled ? nil : .cannotStart("cannot run \(path): \(error.description)")
                } catch {
                    return Task.isCancelled ? nil : .cannotStart("cannot run \(path): \(type(of: error))")
                }
            }
            group.addTask {
                // Cancelling the run (below) makes swift-subprocess kill the child and reap it.
                try? await Task.sleep(for: timeout)
                return Task.isCancelled ? nil : .timedOut(timeout)
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            // Wait for the other task too, so the child is reaped before we return.
            while let _ = await group.next() {}
            return first ?? .timedOut(timeout)
        }
    }
}
