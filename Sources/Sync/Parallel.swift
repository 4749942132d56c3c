import Foundation
import LDAPKit
import Mirror

/// Two halves of one computation run at once, on two cores.
enum Parallel {
    /// Runs `side` on a thread of its own while `main` runs on the caller's thread, and returns
    /// both results once both are done. The halves must share nothing either changes.
    static func run<Main, Side: Sendable>(side: @escaping @Sendable () -> Side, main: () -> Main) -> (Main, Side) {
        let box = Completion<Side>()
        NamedThread.start("parallel") {
            box.finish(side())
        }
        let mainResult = main()
        return (mainResult, box.wait())
    }
}

/// A value one thread or task hands to another, which waits for it or looks for it now and
/// then without waiting.
final class Completion<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is only touched under `condition`'s lock.
    private let condition = NSCondition()
    private var value: Value?

    /// Hands the value over (once).
    func finish(_ result: Value) {
        condition.lock()
        value = result
        condition.broadcast()
        condition.unlock()
    }

    /// The value, once there is one.
    var result: Value? {
        condition.lock()
        defer { condition.unlock() }
        return value
    }

    /// The value, waiting for it if need be.
    func wait() -> Value {
        condition.lock()
        defer { condition.unlock() }
        while value == nil { condition.wait() }
        return value!
    }
}

/// Runs `body` on a thread of its own, as a task to await: a blocking read (SQLite) must not hold
/// a thread of Swift's cooperative pool while other tasks wait for one. The thread runs at the
/// caller's priority (``ThreadPriority``): a reconcile's snapshot load at the reconcile's.
func offPool<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) -> Task<Value, any Error> {
    let niceness = ThreadPriority.niceness
    return Task {
        try await withCheckedThrowingContinuation { continuation in
            NamedThread.start("off-pool") {
                if ThreadPriority.niceness != niceness { ThreadPriority.niceness = niceness }
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
