import Foundation
import Synchronization

/// Folders a test process uses under the temporary directory, removed when the process exits,
/// so that test runs leave nothing behind (a full run made about 30 mirrors, up to 7 MB each,
/// that stayed in /tmp).
public enum TemporaryFolders {
    private static let made = Mutex<[URL]>([])
    private static let removedAtExit: Void = { atexit { TemporaryFolders.removeAll() } }()

    /// A new path `<temporary directory>/<prefix>-<UUID>` (not created), removed at exit.
    public static func make(_ prefix: String) -> URL {
        _ = removedAtExit
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        made.withLock { $0.append(folder) }
        return folder
    }

    private static func removeAll() {
        for folder in made.withLock({ $0 }) { try? FileManager.default.removeItem(at: folder) }
    }
}
