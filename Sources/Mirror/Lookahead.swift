import Foundation

/// Work computed on a thread of its own ahead of the thread that consumes it, in order, a chunk
/// at a time, at most `limit` chunks ahead (so memory stays bounded).
///
/// A bulk apply uses it for what writing a row needs that does not touch the database (canonical
/// records, fingerprints, audit hashes), so that the writer's thread spends its time in SQLite
/// while the other core builds the next rows. `produce` is called with 0, 1, 2, … on one thread,
/// so it may keep state from one chunk to the next.
final class Lookahead<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [[Item]] = []
    private var cancelled = false
    private var finished = false
    private let limit: Int

    init(chunks: Int, limit: Int = 4, produce: @escaping @Sendable (Int) -> [Item]) {
        self.limit = limit
        NamedThread.start("lookahead") { [self] in
            for index in 0..<chunks {
                let chunk = produce(index)
                condition.lock()
                while ready.count >= limit && !cancelled { condition.wait() }
                if cancelled {
                    condition.unlock()
                    return
                }
                ready.append(chunk)
                condition.broadcast()
                condition.unlock()
            }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next chunk, waiting for it if need be; nil after the last one.
    func next() -> [Item]? {
        condition.lock()
        while ready.isEmpty && !finished && !cancelled { condition.wait() }
        guard !ready.isEmpty else {
            condition.unlock()
            return nil
        }
        let chunk = ready.removeFirst()
        condition.broadcast()
        condition.unlock()
        return chunk
    }

    /// Stops the producing thread (after the chunk it is computing). A consumer that may stop
    /// before the last chunk must call it (`defer`): the producer would otherwise wait for room forever.
    func cancel() {
        condition.lock()
        cancelled = true
        ready = []
        condition.broadcast()
        condition.unlock()
    }
}

/// Hands out a ``Lookahead``'s items one by one.
struct LookaheadReader<Item> {
    let lookahead: Lookahead<Item>
    private var chunk: [Item] = []
    private var position = 0

    init(_ lookahead: Lookahead<Item>) { self.lookahead = lookahead }

    /// The next item (chunks may be empty), or nil after the last one.
    mutating func next() -> Item? {
        while position == chunk.count {
            guard let next = lookahead.next() else { return nil }
            chunk = next
            position = 0
        }
        defer { position += 1 }
        return chunk[position]
    }
}
