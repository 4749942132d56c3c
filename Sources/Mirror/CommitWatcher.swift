import Foundation
import GRDB
import Synchronization

/// Tells whether the mirror has commits it has not seen, whoever made them: another process
/// included (an admin's `roster user lock` beside the daemon), which nothing in this process
/// hears of otherwise. SQLite's `data_version`, read on a connection of the watcher's own,
/// changes with every commit made through any other connection; reading it costs a few
/// microseconds and no page of the database.
public final class CommitWatcher: Sendable {
    private let connection: DatabaseQueue
    private let lastVersion = Mutex<Int64?>(nil)

    /// Watches the mirror at `path` (opened read-only).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(1)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        _ = try hasNewCommits()
    }

    /// Whether a commit happened since the last call (the first call only starts counting).
    public func hasNewCommits() throws -> Bool {
        let version = try connection.inDatabase { db in try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
        return lastVersion.withLock { last in
            defer { last = version }
            return last.map { $0 != version } ?? false
        }
    }
}
